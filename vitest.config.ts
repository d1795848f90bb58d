import { defineConfig } from 'vitest/config';

// Integration tests start their own nats-server and clickhouse-server processes; on a 2-core
// machine two test files at a time keep them from starving each other.
export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**', 'dist/**', 'var/**'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
