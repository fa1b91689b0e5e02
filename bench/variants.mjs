#!/usr/bin/env node
// Start-up of several builds side by side: each a built checkout (`npm run build` done), the
// first the baseline. Every round runs every case of every build once, in a rotating order, so
// drift in machine load (this host is shared) hits all builds alike; medians over many rounds.
// Cases: `node -e 0`, `--version`, `throttle-status --json` (with a recent stored sample) and
// `config` (no config file: the common case), each build with its own state folder.
// Two numbers per case: wall time, and CPU time (perf stat's task-clock: all threads, user and
// system), which is what a start-up change moves and which other load on the host moves far
// less than it moves wall time. Without perf (or with --no-perf) only wall time is measured.
// docs/architecture.md ("Start-up") records what this measured and what was decided from it.
// Usage: node bench/variants.mjs [--runs 60] [--cases 'throttle-status --json,config'] NAME=CHECKOUT ...
//   e.g. git clone -q . /tmp/v/base && ln -s "$PWD/node_modules" /tmp/v/base/node_modules
//        (edit /tmp/v/x the same way, change one thing), build each, then
//        node bench/variants.mjs base=/tmp/v/base x=/tmp/v/x
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildsFromArgv, median, printTable, round, runsFromArgv } from './lib.mjs';

const builds = buildsFromArgv('usage: node bench/variants.mjs [--runs N] NAME=CHECKOUT ...   (each checkout built; the first is the baseline)', 'agentctl-var');
const runs = runsFromArgv(60);
const cfg = mkdtempSync(join(tmpdir(), 'agentctl-var-cfg-'));
/** @type {NodeJS.ProcessEnv} */
const env = { ...process.env, NO_COLOR: '1', XDG_CONFIG_HOME: cfg };
for (const k of Object.keys(env)) if (k.startsWith('AGENTCTL_')) delete env[k];
const casesArg = process.argv.indexOf('--cases');
const cases = /** @type {string} */ (casesArg > 0 ? process.argv[casesArg + 1] : '--version,throttle-status --json,config').split(',').map((c) => c.trim().split(/\s+/));

const perf = !process.argv.includes('--no-perf') && spawnSync('perf', ['stat', '-x,', '-e', 'task-clock', '--', 'true'], { stdio: 'ignore' }).status === 0;

/**
 * @typedef {{ name: string; build: string; args: string[]; cwd: string; env?: NodeJS.ProcessEnv; wall: number[]; cpu: number[] }} Job
 */

/**
 * One run: wall ms, and CPU ms (NaN without perf).
 * @param {readonly string[]} args
 * @param {string} cwd
 * @param {NodeJS.ProcessEnv} [jobEnv]
 */
function time(args, cwd, jobEnv = env) {
  const [cmd, argv] = /** @type {[string, readonly string[]]} */ (perf ? ['perf', ['stat', '-x,', '-e', 'task-clock', '--', process.execPath, ...args]] : [process.execPath, args]);
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, argv, { env: jobEnv, cwd, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  const wall = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  const m = /^([\d.]+),msec,task-clock/m.exec(r.stderr);
  return { wall, cpu: m ? Number(m[1]) : NaN };
}

try {
  // jobs: node -e 0, then every case of every build
  /** @type {Job[]} */
  const jobs = [{ name: 'node -e 0', build: '', args: ['-e', '0'], cwd: cfg, wall: [], cpu: [] }];
  for (const c of cases) for (const b of builds) jobs.push({ name: c.join(' '), build: b.name, args: [b.bin, ...c], cwd: b.state, env: { ...env, AGENTCTL_STATE_DIR: b.state }, wall: [], cpu: [] });
  for (const j of jobs) time(j.args, j.cwd, j.env); // warm the page cache and store a first sample
  for (let i = 0; i < runs; i++) {
    for (let k = 0; k < jobs.length; k++) {
      const j = /** @type {Job} */ (jobs[(k + i) % jobs.length]);
      const { wall, cpu } = time(j.args, j.cwd, j.env);
      j.wall.push(wall);
      j.cpu.push(cpu);
    }
  }
  /** @param {'wall' | 'cpu'} k */
  const first = (k) => new Map(jobs.filter((j) => j.build === builds[0].name).map((j) => [j.name, median(j[k])]));
  const base = { wall: first('wall'), cpu: first('cpu') };
  /** @type {(xs: readonly number[], p: number) => number} */
  const q = (xs, p) => /** @type {number} */ ([...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) * p)]);
  /** @type {(j: Job, k: 'wall' | 'cpu') => string} */
  const vs = (j, k) => {
    if (!j.build || j.build === builds[0].name) return '';
    const d = median(j[k]) - /** @type {number} */ (base[k].get(j.name));
    return `${d >= 0 ? '+' : ''}${round(d)}`;
  };
  const cols = ['case', 'build', 'wall_ms', 'wall_vs_first', ...(perf ? ['cpu_ms', 'cpu_iqr', 'cpu_vs_first'] : [])];
  printTable(
    jobs.map((j) => ({
      case: j.name,
      build: j.build,
      wall_ms: round(median(j.wall)),
      wall_vs_first: vs(j, 'wall'),
      cpu_ms: round(median(j.cpu)),
      cpu_iqr: `${round(q(j.cpu, 0.25))}-${round(q(j.cpu, 0.75))}`,
      cpu_vs_first: vs(j, 'cpu'),
    })),
    cols,
  );
  console.log(`\nmedians of ${runs} rounds (ms), node ${process.version}, ${perf ? 'CPU from perf stat task-clock' : 'no perf: wall time only'}; baseline ${builds[0].name}`);
} finally {
  for (const b of builds) rmSync(b.state, { recursive: true, force: true });
  rmSync(cfg, { recursive: true, force: true });
}
