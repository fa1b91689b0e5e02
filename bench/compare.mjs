#!/usr/bin/env node
// This build against another checkout's build, interleaved in one process, so a change's cost
// is measured against the code before it on the same machine at the same moment (absolute
// times on this host moved by 2x between runs: `node -e 0` took 57 ms one day, 116 ms another).
// Cases: `node -e 0`, `throttle-status --json` (with a recent stored sample) and `spawn -d`
// of `true` (throttling off, so the admission path alone), each with its own state folder.
// Usage: node bench/compare.mjs OTHER_CHECKOUT [--runs 40]
//   e.g. git worktree add /tmp/base 807fa0d && ln -s "$PWD/node_modules" /tmp/base/node_modules \
//        && (cd /tmp/base && npm run build) && node bench/compare.mjs /tmp/base
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { bin, median, printTable, round, runsFromArgv } from './lib.mjs';

const other = process.argv[2];
if (!other || other.startsWith('--')) {
  console.error('usage: node bench/compare.mjs OTHER_CHECKOUT [--runs N]   (the other checkout must be built)');
  process.exit(2);
}
const bins = { this: bin, other: join(resolve(other), 'bin', 'agentctl') };
const runs = runsFromArgv(40);
/** @type {NodeJS.ProcessEnv} */
const env = { ...process.env, AGENTCTL_DISABLE_THROTTLE: '1', AGENTCTL_SPAWN_COUNT_UNMANAGED: '0', NO_COLOR: '1' };
delete env.AGENTCTL_CONFIG;
const dirs = { this: mkdtempSync(join(tmpdir(), 'agentctl-cmp-this-')), other: mkdtempSync(join(tmpdir(), 'agentctl-cmp-other-')) };

/** @param {readonly string[]} args */
function time(args) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

try {
  /** @type {Record<'node' | `${'ts' | 'spawn'} ${'this' | 'other'}`, number[]>} */
  const t = { node: [], 'ts this': [], 'ts other': [], 'spawn this': [], 'spawn other': [] };
  for (const k of /** @type {const} */ (['this', 'other'])) time([bins[k], '--state-dir', dirs[k], 'throttle-status', '--json']);
  for (let i = 0; i < runs; i++) {
    t.node.push(time(['-e', '0']));
    for (const k of /** @type {const} */ (['this', 'other'])) {
      t[`ts ${k}`].push(time([bins[k], '--state-dir', dirs[k], 'throttle-status', '--json']));
      t[`spawn ${k}`].push(time([bins[k], '--state-dir', dirs[k], 'spawn', '-d', '--name', `c${i}`, '--', 'true']));
    }
  }
  const base = median(t.node);
  /** @type {(name: string, xs: number[], vs?: number[]) => Record<string, unknown>} */
  const row = (name, xs, vs) => ({
    name,
    median_ms: round(median(xs)),
    ratio_to_node: round(median(xs) / base, 2),
    vs_other: vs === undefined ? '' : `${round((median(xs) / median(vs) - 1) * 100)}%`,
  });
  printTable(
    [
      row('node -e 0', t.node),
      row('throttle-status --json (this)', t['ts this'], t['ts other']),
      row('throttle-status --json (other)', t['ts other']),
      row('spawn -d -- true (this)', t['spawn this'], t['spawn other']),
      row('spawn -d -- true (other)', t['spawn other']),
    ],
    ['name', 'median_ms', 'ratio_to_node', 'vs_other'],
  );
  console.log(`\n${runs} interleaved runs; this = ${bins.this}, other = ${bins.other}`);
} finally {
  for (const d of Object.values(dirs)) rmSync(d, { recursive: true, force: true });
}
