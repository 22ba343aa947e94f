import { fileURLToPath } from 'node:url';
import preact from '@preact/preset-vite';
import { defineConfig } from 'vite';

// The operator console is served by the API under /console (api/app.ts); in development `vite` proxies /api.
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/console/',
  plugins: [preact()],
  build: { outDir: 'dist', emptyOutDir: true },
  server: { proxy: { '/api': `http://127.0.0.1:${process.env['API_PORT'] ?? '28080'}` } },
});
