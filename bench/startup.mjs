#!/usr/bin/env node
// Start-up cost: `agentctl --version` and `throttle-status --json` (with a recent stored
// sample, as when cron or a shell loop calls it) against `node -e 0`, medians of interleaved
// runs in one process. Goals (DESIGN.md): 1.3x and 1.6x.
// Usage: npm run bench:startup [-- --runs 40]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bin, interleaved, printTable, root, round, runsFromArgv, timeOnce } from './lib.mjs';

const runs = runsFromArgv(40);
const stateDir = mkdtempSync(join(tmpdir(), 'agentctl-bench-'));
/** @type {NodeJS.ProcessEnv} */
const env = { ...process.env, AGENTCTL_STATE_DIR: stateDir, NO_COLOR: '1' };
delete env.AGENTCTL_CONFIG;

try {
  // a first sample, so later runs measure CPU against a stored one instead of waiting
  timeOnce(process.execPath, [bin, 'throttle-status', '--json'], { env });
  const cases = [
    { name: 'node -e 0', cmd: process.execPath, args: ['-e', '0'], opts: { env } },
    { name: 'agentctl --version', cmd: process.execPath, args: [bin, '--version'], opts: { env } },
    { name: 'agentctl throttle-status --json', cmd: process.execPath, args: [bin, 'throttle-status', '--json'], opts: { env } },
  ];
  const res = interleaved(cases, runs);
  const base = /** @type {{ median_ms: number }} */ (res[0]).median_ms;
  /** @type {Record<string, number>} */
  const goals = { 'agentctl --version': 1.3, 'agentctl throttle-status --json': 1.6 };
  const rows = res.map((r) => ({
    ...r,
    ratio: round(r.median_ms / base, 2),
    goal: goals[r.name] ? `<= ${goals[r.name]}x` : '',
    ok: goals[r.name] ? (r.median_ms / base <= /** @type {number} */ (goals[r.name]) ? 'yes' : 'NO') : '',
  }));
  printTable(rows, ['name', 'median_ms', 'min_ms', 'ratio', 'goal', 'ok']);
  const out = join(root, 'bench', 'results', 'startup.json');
  writeFileSync(out, `${JSON.stringify({ when: new Date().toISOString(), node: process.version, runs, rows }, null, 2)}\n`);
  console.log(`\nwritten to ${out}`);
} finally {
  rmSync(stateDir, { recursive: true, force: true });
}
