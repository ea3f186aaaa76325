import { defineConfig } from 'vitest/config';

// Tests run ONNX Runtime sessions; two forked workers match the 2-core machines CI uses.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 300_000,
    hookTimeout: 300_000,
  },
});
