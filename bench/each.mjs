#!/usr/bin/env node
// spawn --each makespan (issue #14, item 5): 30 x `sleep 1` on 3 slots, one batch process
// (`agentctl spawn --each FILE --max 3`), against GNU `parallel -j3` on the same 30 lines,
// interleaved in the same run. Wall time from launch until the process exits, so agentctl's
// start-up and the last job's record are in it. Goals: <= 1.02x the ideal 10 s, and <= 0.85x
// parallel.
//
// Usage:  node bench/each.mjs [--runs 3]     (build first: npm run build)
// Peer: GNU parallel (apt-get install parallel); skipped with a message when missing.
// Writes bench/results/each.json. Runs in a temp dir (state, the line file) removed at the end;
// every run is a foreground child of this script and ends before the next starts.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { bin, median, printTable, root, round, runsFromArgv } from './lib.mjs';

const RUNS = runsFromArgv(3);
const JOBS = 30;
const SLOTS = 3;
const IDEAL_MS = (JOBS / SLOTS) * 1000;

const work = mkdtempSync(join(tmpdir(), 'agentctl-bench-each-'));
const lines = join(work, 'jobs.txt');
writeFileSync(lines, 'sleep 1\n'.repeat(JOBS));
/** Environment for agentctl: no inherited AGENTCTL_* settings or user config, throttle off (as bench/spawn.mjs). */
const agentEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AGENTCTL_')));
mkdirSync(join(work, 'xdg'));
Object.assign(agentEnv, { AGENTCTL_DISABLE_THROTTLE: '1', NO_COLOR: '1', XDG_CONFIG_HOME: join(work, 'xdg') });
const parallel = ['/usr/bin/parallel', '/usr/local/bin/parallel'].find((p) => existsSync(p));

/**
 * @param {string} cmd
 * @param {readonly string[]} args
 * @param {{ input?: string; env?: NodeJS.ProcessEnv }} [opts]
 */
function wall(cmd, args, opts = {}) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { cwd: work, env: opts.env ?? process.env, stdio: ['pipe', 'ignore', 'pipe'], input: opts.input ?? '' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return ms;
}

/** @type {number[]} */
const each = [];
/** @type {number[]} */
const peer = [];
try {
  for (let i = 0; i < RUNS; i++) {
    const sd = join(work, `state-${i}`);
    each.push(wall(process.execPath, [bin, '--state-dir', sd, 'spawn', '--each', lines, '--group', 'bench', '--max', String(SLOTS), '-q'], { env: agentEnv }));
    if (parallel) peer.push(wall(parallel, ['-j', String(SLOTS)], { input: 'sleep 1\n'.repeat(JOBS), env: { ...process.env, PARALLEL_HOME: join(work, 'parallel-home') } }));
    else if (i === 0) console.error('GNU parallel not found: apt-get install parallel for the peer figure');
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

const m = median(each);
const p = peer.length ? median(peer) : undefined;
const rows = [
  {
    figure: `spawn --each ${JOBS} x sleep 1 on ${SLOTS} slots: makespan / ideal`,
    agentctl: round(m),
    peer: `ideal ${IDEAL_MS}`,
    ratio: round(m / IDEAL_MS, 3),
    goal: '<= 1.02',
    ok: m / IDEAL_MS <= 1.02,
  },
  ...(p !== undefined
    ? [
        {
          figure: `spawn --each ${JOBS} x sleep 1 on ${SLOTS} slots: vs parallel -j${SLOTS}`,
          agentctl: round(m),
          peer: `parallel: ${round(p)}`,
          ratio: round(m / p, 3),
          goal: '<= 0.85',
          ok: m / p <= 0.85,
        },
      ]
    : []),
];
printTable(rows, ['figure', 'agentctl', 'peer', 'ratio', 'goal', 'ok']);
console.log(
  `runs: ${RUNS}; each: ${each.map((x) => round(x)).join(', ')} ms; parallel: ${peer.map((x) => round(x)).join(', ') || '-'} ms; load ${loadavg()
    .map((x) => round(x, 2))
    .join(' ')} on ${cpus().length} cores`,
);
mkdirSync(join(root, 'bench', 'results'), { recursive: true });
writeFileSync(
  join(root, 'bench', 'results', 'each.json'),
  `${JSON.stringify({ when: new Date().toISOString(), node: process.version, runs: RUNS, each_ms: each, parallel_ms: peer, rows }, null, 2)}\n`,
);
