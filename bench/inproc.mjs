#!/usr/bin/env node
// Like bench/variants.mjs, but timing only agentctl's own part of each run: from before
// bin/agentctl's load() (compile with the code cache, run the bundle's top level) to the end
// of main(), inside the process, in wall and CPU time (process.cpuUsage). Node's own
// bootstrap, the largest and noisiest part of a whole run on a shared host, is left out, so
// differences of a few milliseconds between builds show.
// docs/architecture.md ("Start-up") records what this measured and what was decided from it.
// Usage: node bench/inproc.mjs [--runs 60] [--cases '--version,throttle-status --json,config'] NAME=CHECKOUT ...
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildsFromArgv, median, printTable, round, runsFromArgv } from './lib.mjs';

const builds = buildsFromArgv('usage: node bench/inproc.mjs [--runs N] [--cases A,B] NAME=CHECKOUT ...   (each checkout built; the first is the baseline)', 'agentctl-inproc');
const runs = runsFromArgv(60);
const casesArg = process.argv.indexOf('--cases');
const cases = /** @type {string} */ (casesArg > 0 ? process.argv[casesArg + 1] : '--version,throttle-status --json,config').split(',').map((c) => c.trim().split(/\s+/));
const work = mkdtempSync(join(tmpdir(), 'agentctl-inproc-'));
/** @type {NodeJS.ProcessEnv} */
const env = { ...process.env, NO_COLOR: '1', XDG_CONFIG_HOME: work };
for (const k of Object.keys(env)) if (k.startsWith('AGENTCTL_')) delete env[k];

// the runner: bin/agentctl's load() and main(), timed; the result goes to fd 3
const runner = join(work, 'runner.cjs');
writeFileSync(
  runner,
  `'use strict';
const [bin, ...argv] = process.argv.slice(2);
const c0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
const agentctl = require(bin).load().exports;
agentctl.main(argv).then((code) => {
  const wall = Number(process.hrtime.bigint() - t0) / 1e6;
  const c = process.cpuUsage(c0);
  require('node:fs').writeSync(3, JSON.stringify({ code, wall, cpu: (c.user + c.system) / 1000 }));
});
`,
);

/**
 * @typedef {{ name: string; build: string; args: string[]; cwd: string; env: NodeJS.ProcessEnv; wall: number[]; cpu: number[] }} Job
 */

/**
 * One run, timed inside the process by the runner.
 * @param {readonly string[]} args
 * @param {string} cwd
 * @param {NodeJS.ProcessEnv} jobEnv
 * @returns {{ code: number; wall: number; cpu: number }}
 */
function time(args, cwd, jobEnv) {
  const r = spawnSync(process.execPath, [runner, ...args], { env: jobEnv, cwd, stdio: ['ignore', 'ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  const out = r.output[3];
  if (r.status !== 0 || !out) throw new Error(`${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  const m = JSON.parse(out);
  if (m.code !== 0) throw new Error(`${args.join(' ')}: main returned ${m.code}: ${r.stderr}`);
  return m;
}

try {
  /** @type {Job[]} */
  const jobs = [];
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
  /** @type {(k: 'wall' | 'cpu', name: string) => number} */
  const base = (k, name) => median(/** @type {Job} */ (jobs.find((j) => j.build === builds[0].name && j.name === name))[k]);
  /** @type {(j: Job, k: 'wall' | 'cpu') => string} */
  const vs = (j, k) => {
    if (j.build === builds[0].name) return '';
    const d = median(j[k]) - base(k, j.name);
    return `${d >= 0 ? '+' : ''}${round(d)}`;
  };
  /** @type {(xs: readonly number[], p: number) => number} */
  const q = (xs, p) => /** @type {number} */ ([...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) * p)]);
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
    ['case', 'build', 'wall_ms', 'wall_vs_first', 'cpu_ms', 'cpu_iqr', 'cpu_vs_first'],
  );
  console.log(`\nmedians of ${runs} rounds (ms, agentctl's part of each run only), node ${process.version}; baseline ${builds[0].name}`);
} finally {
  for (const b of builds) rmSync(b.state, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
}
