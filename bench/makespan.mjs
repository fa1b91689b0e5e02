#!/usr/bin/env node
// The --wait makespan against its floor (issue 14, item 5): 30 separate
// `agentctl spawn --wait 5m --group w --max 3 -- sleep 1` started at once (ideal 10 s), and in
// the same trial the floor any Node command line meets on this host: the ideal plus the time
// until 3 of 30 `node -e 0` started at once have exited. Goal: agentctl's makespan - the floor
// <= 0.02x the ideal. Trials alternate the two; the figure is the median over them, with where
// agentctl's time went (first admission, the third, slot hand-offs, each run's length).
//
// Usage:  node bench/makespan.mjs [--runs 5]     (build first: npm run build)
// Writes bench/results/makespan.json. Each trial has its own temp state dir, removed at the
// end; every process started exits by itself (sleep 1 under foreground spawns, node -e 0).
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { bin, median, printTable, root, round, runsFromArgv } from './lib.mjs';

const N = 30;
const SLOTS = 3;
const IDEAL_S = 10;
const trials = runsFromArgv(5);
const node = process.execPath;
const work = mkdtempSync(join(tmpdir(), 'agentctl-bench-makespan-'));
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AGENTCTL_')));
Object.assign(env, { AGENTCTL_DISABLE_THROTTLE: '1', NO_COLOR: '1', XDG_CONFIG_HOME: join(work, 'xdg') });

/**
 * Start a process; resolves with when it exited (hrtime) and its exit code.
 * @param {string[]} args
 * @returns {Promise<{ at: bigint; code: number | null }>}
 */
const run = (args) =>
  new Promise((resolve) => {
    const c = spawn(node, args, { stdio: 'ignore', env, cwd: work });
    /** @type {bigint | undefined} */
    let at;
    c.once('exit', () => (at = process.hrtime.bigint()));
    c.once('close', (code) => resolve({ at: at ?? process.hrtime.bigint(), code }));
  });
/** @param {bigint} t0 @param {bigint} t1 */
const ms = (t0, t1) => Number(t1 - t0) / 1e6;

/** @param {number} k */
async function trial(k) {
  const sd = join(work, `state-${k}`);
  const t0 = process.hrtime.bigint();
  const wall0 = Date.now();
  const rs = await Promise.all(
    Array.from({ length: N }, (_, i) => run([bin, 'spawn', '--state-dir', sd, '--wait', '5m', '--name', `w${i}`, '--group', 'w', '--max', String(SLOTS), '--', 'sleep', '1'])),
  );
  const makespanMs = ms(
    t0,
    rs.reduce((m, r) => (r.at > m ? r.at : m), t0),
  );
  // agentctl's own record: when each run was admitted and when it exited
  const ev = /** @type {{ events: Array<{ kind: string; time: string; data: { run_id?: string } | null }> }} */ (
    JSON.parse(spawnSync(node, [bin, 'events', '--json', '--limit', '10000', '--state-dir', sd], { env, cwd: work, encoding: 'utf8' }).stdout)
  ).events;
  /** @type {Map<string, { a?: number; x?: number }>} */
  const runs = new Map();
  for (const e of ev) {
    const id = e.data?.run_id;
    if (!id || (e.kind !== 'spawn.admitted' && e.kind !== 'run.exited')) continue;
    const r = runs.get(id) ?? {};
    if (e.kind === 'spawn.admitted') r.a = Date.parse(e.time);
    else r.x = Date.parse(e.time);
    runs.set(id, r);
  }
  const rec = [...runs.values()];
  const admits = rec.flatMap((r) => (r.a === undefined ? [] : [r.a])).sort((a, b) => a - b);
  const exits = rec.flatMap((r) => (r.x === undefined ? [] : [r.x])).sort((a, b) => a - b);
  const lengths = rec.flatMap((r) => (r.a !== undefined && r.x !== undefined ? [r.x - r.a] : []));
  const handoffs = admits.slice(SLOTS).map((t, i) => t - /** @type {number} */ (exits[i]));
  const f0 = process.hrtime.bigint();
  const floor = await Promise.all(Array.from({ length: N }, () => run(['-e', '0'])));
  const third = /** @type {number} */ (floor.map((r) => ms(f0, r.at)).sort((a, b) => a - b)[SLOTS - 1]);
  const floorMs = IDEAL_S * 1000 + third;
  return {
    load1: round(/** @type {number} */ (loadavg()[0]), 2),
    makespan_ms: Math.round(makespanMs),
    floor_ms: Math.round(floorMs),
    over_floor_x_ideal: round((makespanMs - floorMs) / (IDEAL_S * 1000), 3),
    first_admission_ms: admits.length ? /** @type {number} */ (admits[0]) - wall0 : null,
    third_admission_ms: admits.length >= SLOTS ? /** @type {number} */ (admits[SLOTS - 1]) - wall0 : null,
    floor_third_exit_ms: Math.round(third),
    handoff_median_ms: handoffs.length ? median(handoffs) : null,
    run_length_median_ms: lengths.length ? median(lengths) : null,
    not_zero: rs.filter((r) => r.code !== 0).length,
  };
}

try {
  /** @type {Array<Awaited<ReturnType<typeof trial>>>} */
  const results = [];
  for (let k = 0; k < trials; k++) {
    const r = await trial(k);
    console.error(`trial ${k + 1}/${trials}: ${JSON.stringify(r)}`);
    results.push(r);
  }
  const med = (/** @type {(r: (typeof results)[number]) => number | null} */ f) => median(results.flatMap((r) => (f(r) === null ? [] : [/** @type {number} */ (f(r))])));
  const over = med((r) => r.over_floor_x_ideal);
  const rows = [
    { figure: `--wait makespan, ${N} x 1 s on ${SLOTS} slots (ms)`, agentctl: med((r) => r.makespan_ms), peer: `floor ${med((r) => r.floor_ms)}`, ratio: '', goal: '', ok: '' },
    { figure: '--wait makespan - floor, x ideal', agentctl: over, peer: '', ratio: '', goal: '<= 0.02', ok: over <= 0.02 ? 'yes' : 'NO' },
    { figure: 'third admission vs the floor third exit (ms)', agentctl: med((r) => r.third_admission_ms), peer: med((r) => r.floor_third_exit_ms), ratio: '', goal: '', ok: '' },
    { figure: 'slot hand-off, exit to next admission (ms)', agentctl: med((r) => r.handoff_median_ms), peer: '', ratio: '', goal: '', ok: '' },
    { figure: 'a run admitted to exited, sleep 1 (ms)', agentctl: med((r) => r.run_length_median_ms), peer: '', ratio: '', goal: '', ok: '' },
  ];
  printTable(rows, ['figure', 'agentctl', 'peer', 'ratio', 'goal', 'ok']);
  mkdirSync(join(root, 'bench', 'results'), { recursive: true });
  writeFileSync(join(root, 'bench', 'results', 'makespan.json'), `${JSON.stringify({ when: new Date().toISOString(), node: process.version, trials: results, rows }, null, 2)}\n`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
