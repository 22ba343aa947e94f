import { defineConfig } from 'vitest/config';

// Two projects: fast unit tests beside the code, and integration tests against the real local services
// (started by `infra/stack.sh up`; the integration global setup fails fast when they are not running).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['**/*.test.ts', '**/*.test.tsx'],
          exclude: ['**/*.int.test.ts', 'node_modules/**', '.data/**'],
          environment: 'node',
        },
      },
      {
        test: {
          name: 'integration',
          include: ['**/*.int.test.ts'],
          exclude: ['node_modules/**', '.data/**'],
          environment: 'node',
          globalSetup: ['lib/testing/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
