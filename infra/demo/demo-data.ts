/** The demo tenant: one garage level with eight spaces, each with a Browan TBMS100 sensor. Local use only. */
export const demoTenant = { slug: 'demo-city', name: 'Demo City Garage' } as const;

/** A fixed key so the README can name it; it exists only in the local demo database. */
export const demoApiKey = 'pk_demo_local_only_do_not_use_in_production';

export const demoSpaces = Array.from({ length: 8 }, (_, i) => ({
  code: `L1-${String(i + 1).padStart(2, '0')}`,
  name: `Level 1, bay ${i + 1}`,
  devEui: `70B3D57ED00500${(i + 1).toString(16).toUpperCase().padStart(2, '0')}`,
}));
