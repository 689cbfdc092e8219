import { defineConfig } from 'vitest/config';

// Unit tests are quick and pure; the e2e tests build real images and judge
// them with real readers (zdb, grub-fstest, the OpenZFS kernel in qemu), so
// they set their own, longer time limits per test.
export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts', 'test/e2e/**/*.test.ts'],
    // Child processes (tsmakefs, zdb, qemu) and big buffers: separate
    // processes, at most one per core of the 2-core CI machine.
    pool: 'forks',
    maxWorkers: 2,
    // Tests marked concurrent inside one file (the e2e suite) run two at a
    // time: each one mostly waits on a child process.
    maxConcurrency: 2,
    testTimeout: 60_000,
    hookTimeout: 10 * 60_000,
    teardownTimeout: 60_000,
    slowTestThreshold: 30_000,
    // One line per test with its time in CI logs; the usual summary locally.
    reporters: process.env.CI ? ['verbose'] : ['default'],
    // Failure messages carry the oracle's own output: print it whole.
    chaiConfig: { truncateThreshold: 0 },
  },
});
