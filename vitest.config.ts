import { defineConfig } from 'vitest/config';

// Two tiers (STYLE.md 20). `npm run test:unit` runs the unit project alone: pure functions,
// fakes and a temp db, no build needed, seconds for the edit loop. `npm test` builds and runs
// both: the integration project drives the built bin/agentctl with real processes, and holds
// the heavy suites (100 concurrent spawners, fuzzing, crash injection) whose sizes are set by
// AGENTCTL_TEST_* / AGENTCTL_FUZZ_* / AGENTCTL_CRASH_* variables (see the top of each file).
export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          // first, on their own: they finish in seconds, and do not share the host with integration files
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          // Integration tests measure the host's CPU and start real processes; on a 2-core machine
          // files running side by side would disturb each other's readings. One file at a time.
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
