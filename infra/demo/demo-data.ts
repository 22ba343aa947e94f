/** The demo tenant: one garage level with eight spaces, each with a Browan TBMS100 sensor. Local use only. */
export const demoTenant = { slug: 'demo-city', name: 'Demo City Garage' } as const;

/**
 * The demo's ChirpStack application. The demo's bridge subscribes to this application's topics only, so test
 * runs publishing on the same local Mosquitto (under other application ids) never reach the demo, and the demo
 * never writes test tenants' spaces. infra/stack.sh reads this constant.
 */
export const demoApplicationId = 'd3e0a000-0000-4000-8000-00000000de00';

/** A fixed key so the README can name it; it exists only in the local demo database. */
export const demoApiKey = 'pk_demo_local_only_do_not_use_in_production';

export const demoSpaces = Array.from({ length: 8 }, (_, i) => ({
  code: `L1-${String(i + 1).padStart(2, '0')}`,
  name: `Level 1, bay ${i + 1}`,
  devEui: `70B3D57ED00500${(i + 1).toString(16).toUpperCase().padStart(2, '0')}`,
}));
