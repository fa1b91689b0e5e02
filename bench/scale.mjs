#!/usr/bin/env node
// scale: how the cost of the process-table commands grows with the number of processes on the
// host (DESIGN.md, "Performance", Scale): `agentctl ps --json`, `reap --dry-run --json` and
// `dedupe-workers --dry-run --json` against `node -e 0`, medians of interleaved runs in one
// process, with 100, 2,500 and 5,000 extra processes alive on the host.
//   Goals: with 5,000 extra processes each command <= 4.5x `node -e 0`, and linear growth.
//   Reported: the ratio to `node -e 0` at each size, and the cost per 1,000 processes,
//   (t5000 - t100) / 4.9 ms. Linear = the slope from 2,500 to 5,000 is at most 1.5x the slope
//   from 100 to 2,500, plus 2 ms per 1,000 for noise (a quadratic cost gives about 3x).
// The sizes are measured up and down again (100, 2,500, 5,000, 2,500, 100) and each size's
// figure is the mean of its medians, so a load change on the host during the run (another job
// starting or ending) is spread over every size instead of reading as growth. The host's CPU
// use is recorded per block (this script keeps about one core busy: 50% on 2 CPUs); if it is
// much higher, something else ran meanwhile: rerun before trusting a NO. (Not the load average:
// ending thousands of processes at once spikes it for minutes.)
// The extra processes are real and cheap: `sleep 600` forked in batches of <= 500 by `sh`
// helpers (each helper leads its own process group), plus a few that give the commands real
// work: `claude 600` (x5; a symlink named claude to sleep, so `ps` lists unmanaged agents), and
// duplicate workers for dedupe: `python3 bench_worker.py --daemon` (x3), `bench_worker_v2.py`,
// `sh -c 'python3 bench_worker.py --daemon; true'` wrappers (x2) and `sh bench_worker.sh`
// copies (x3; 8 of them and no python when python3 is missing).
//
// Usage:  node bench/scale.mjs [--runs 21]      (runs: at least 15; about 2 minutes)
//         (build first if dist/ is stale: npm run build)
// Prints one table and writes bench/results/scale.json. Everything runs in one temp dir
// (agentctl --state-dir, XDG_CONFIG_HOME, the scripts) that is removed at the end; every process
// started is ended by its PID, children before the group leaders started here (so a helper shell
// reaps its own sleeps), KILL only if TERM failed, and the script checks that none
// is left. A process counts as ours only if it is in one of our process groups and carries a
// BENCH_SCALE_TOKEN set here in its environment, so a PID reused meanwhile is never signalled.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { bin, interleaved, printTable, root, round, runsFromArgv, timeOnce } from './lib.mjs';

const node = process.execPath;
const RUNS = Math.max(15, runsFromArgv(21));
const WARMUP = 3;
/** extra processes alive in each block: up, then down again */
const LEVELS = [100, 2500, 5000];
const BLOCKS = [100, 2500, 5000, 2500, 100];
const BATCH = 500; // sleeps per helper shell
const GOAL_RATIO = 4.5;
const SLEEP_S = '600';

const work = mkdtempSync(join(tmpdir(), 'agentctl-bench-scale-'));
const stateDir = join(work, 'state');
const scripts = join(work, 'scripts');
const binDir = join(work, 'bin');
const cwd = join(work, 'cwd');
for (const d of [stateDir, scripts, binDir, cwd, join(work, 'xdg-config')]) mkdirSync(d, { recursive: true });
/** @param {number} ms */
const sleepMs = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** Environment for agentctl: no inherited AGENTCTL_* settings or user config, throttle off. */
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AGENTCTL_')));
Object.assign(env, { AGENTCTL_DISABLE_THROTTLE: '1', NO_COLOR: '1', XDG_CONFIG_HOME: join(work, 'xdg-config') });

// ---------------------------------------------------------------------------------------------
// the process table, read the way a human would check it

/** CPU ticks from /proc/stat: { busy, total } (idle and iowait are not busy). */
/** @param {{ busy: number; total: number }} t0 */
const cpuBusy = (t0) => {
  const t1 = cpuTicks();
  return round((100 * (t1.busy - t0.busy)) / Math.max(1, t1.total - t0.total));
};
function cpuTicks() {
  const f = /** @type {string} */ (readFileSync('/proc/stat', 'latin1').split('\n')[0]).trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - /** @type {number} */ (f[3]) - (f[4] ?? 0), total };
}

/** Numeric entries in /proc: every process and kernel thread on the host. */
const countProc = () => readdirSync('/proc').filter((n) => n.charCodeAt(0) >= 48 && n.charCodeAt(0) <= 57).length;

/** Every process started here carries this in its environment: a reused PID or PGID is not ours. */
const MARK = `BENCH_SCALE_TOKEN=${process.pid}.${Date.now()}`;
/** @param {number | string} pid */
const marked = (pid) => {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(MARK);
  } catch {
    return false;
  }
};

/**
 * Our processes in the given process groups: { live, zombies, pids (live ones), procs: [{ pid,
 * pgid, state }] }. Live ones must carry MARK; a zombie (its environment is gone) counts when its
 * parent is this process or one of our group leaders.
 * @param {ReadonlySet<number>} pgids
 * @returns {Look}
 */
function inGroups(pgids) {
  let live = 0;
  let zombies = 0;
  /** @type {number[]} */
  const pids = [];
  /** @type {Look['procs']} */
  const procs = [];
  for (const n of readdirSync('/proc')) {
    if (n.charCodeAt(0) < 48 || n.charCodeAt(0) > 57) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${n}/stat`, 'latin1');
    } catch {
      continue; // gone meanwhile
    }
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const pgid = Number(f[2]);
    if (!pgids.has(pgid)) continue;
    if (f[0] === 'Z' ? !(Number(f[1]) === process.pid || groups.has(Number(f[1]))) : !marked(n)) continue;
    procs.push({ pid: Number(n), pgid, state: /** @type {string} */ (f[0]) });
    if (f[0] === 'Z') zombies++;
    else {
      live++;
      pids.push(Number(n));
    }
  }
  return { live, zombies, pids, procs };
}

// ---------------------------------------------------------------------------------------------
// the extra processes

/** @typedef {{ live: number; zombies: number; pids: number[]; procs: Array<{ pid: number; pgid: number; state: string }> }} Look */

/** every process-group leader started here (pgid = pid): { expect: processes it holds, level } */
/** @type {Map<number, { expect: number; level: number }>} */
const groups = new Map();
/** the groups not ended yet */
/** @type {Set<number>} */
const active = new Set();

/**
 * @param {string} cmd
 * @param {string[]} args
 * @param {number} expect
 * @param {number} level
 */
function startGroup(cmd, args, expect, level, opts = {}) {
  const child = spawn(cmd, args, { stdio: 'ignore', detached: true, cwd, env: { ...process.env, [/** @type {string} */ (MARK.split('=')[0])]: MARK.split('=')[1] }, ...opts });
  if (!child.pid) throw new Error(`could not start ${cmd} ${args.join(' ')}`);
  child.on('error', () => {});
  groups.set(child.pid, { expect, level });
  active.add(child.pid);
  return child.pid;
}

function limits() {
  /** @param {string} p */
  const read = (p) => {
    try {
      return Number(readFileSync(p, 'utf8').trim());
    } catch {
      return undefined;
    }
  };
  // `ulimit -u` (dash has no -u): the soft "Max processes" line of /proc/self/limits
  const m = /^Max processes\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  const u = m ? m[1] : 'unlimited';
  return { ulimit_u: u === 'unlimited' ? Infinity : Number(u), pid_max: read('/proc/sys/kernel/pid_max'), threads_max: read('/proc/sys/kernel/threads-max') };
}

function realPython() {
  const r = spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() ? r.stdout.trim() : undefined;
}

/** The few processes that look like agents and duplicate workers; returns how many processes. */
/**
 * @param {string | undefined} python
 * @param {number} level
 */
function startSpecials(python, level) {
  symlinkSync('/usr/bin/sleep', join(binDir, 'claude'));
  writeFileSync(join(scripts, 'bench_worker.sh'), `sleep ${SLEEP_S}\n`);
  let n = 0;
  for (let i = 0; i < 5; i++) n += (startGroup(join(binDir, 'claude'), [SLEEP_S], 1, level), 1);
  if (python) {
    const py = 'import time\ntime.sleep(600)\n';
    writeFileSync(join(scripts, 'bench_worker.py'), py);
    writeFileSync(join(scripts, 'bench_worker_v2.py'), py);
    for (let i = 0; i < 3; i++) n += (startGroup(python, [join(scripts, 'bench_worker.py'), '--daemon'], 1, level), 1);
    n += (startGroup(python, [join(scripts, 'bench_worker_v2.py')], 1, level), 1);
    for (let i = 0; i < 2; i++) n += (startGroup('sh', ['-c', `${python} ${join(scripts, 'bench_worker.py')} --daemon; true`], 2, level), 2);
  }
  for (let i = 0; i < (python ? 3 : 8); i++) n += (startGroup('sh', [join(scripts, 'bench_worker.sh')], 2, level), 2);
  return n;
}

/** Start `total` extra processes as helper shells forking sleeps (helpers count). */
/**
 * @param {number} total
 * @param {number} level
 */
function startFillers(total, level) {
  let left = total;
  while (left > 0) {
    const k = Math.min(BATCH, left - 1);
    if (k <= 0) break;
    startGroup('sh', ['-c', `i=0; while [ $i -lt ${k} ]; do sleep ${SLEEP_S} & i=$((i+1)); done; wait`], k + 1, level);
    left -= k + 1;
  }
}

/** Wait until every group holds the processes it should (python and sh take a moment). */
function waitReady(timeoutMs = 60_000) {
  const want = [...active].reduce((a, pg) => a + /** @type {{ expect: number }} */ (groups.get(pg)).expect, 0);
  const t0 = Date.now();
  for (;;) {
    const { live } = inGroups(active);
    if (live >= want) return live;
    if (Date.now() - t0 > timeoutMs) throw new Error(`only ${live} of ${want} extra processes came up in ${timeoutMs} ms`);
    sleepMs(100);
  }
}

let cleaned = false;
/**
 * @param {number} pid
 * @param {NodeJS.Signals} sig
 */
const signal = (pid, sig) => {
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
};
/** Poll (blocking) until `done(inGroups(...))` or `ms` pass; returns the last look. */
/**
 * @param {ReadonlySet<number>} pgids
 * @param {(look: Look) => boolean} done
 * @param {number} ms
 */
function pollSync(pgids, done, ms) {
  let look = inGroups(pgids);
  for (let t = 0; t < ms && !done(look); t += 50) {
    sleepMs(50);
    look = inGroups(pgids);
  }
  return look;
}
/**
 * End the given groups' processes by PID: first the children of the group leaders (the sleeps
 * of a helper shell, the python under a wrapper), so their still-living parent reaps them
 * instead of leaving thousands of zombies to PID 1; then the leaders, which this process
 * reaps. KILL (by PID too) only for what TERM did not end. Returns what is left.
 */
/** @param {ReadonlySet<number>} pgids */
function endGroups(pgids) {
  const isLeader = (/** @type {Look['procs'][number]} */ p) => p.pid === p.pgid;
  for (const p of inGroups(pgids).procs) if (!isLeader(p) && p.state !== 'Z') signal(p.pid, 'SIGTERM');
  // a helper shell's `wait` reaps its sleeps and it exits by itself; give that a moment
  pollSync(pgids, (l) => !l.procs.some((p) => !isLeader(p)), 10_000);
  for (const p of inGroups(pgids).procs) if (isLeader(p) && p.state !== 'Z') signal(p.pid, 'SIGTERM');
  let left = pollSync(pgids, (l) => l.live === 0, 5_000);
  if (left.live > 0) {
    for (const p of left.procs) if (p.state !== 'Z') signal(p.pid, 'SIGKILL');
    left = pollSync(pgids, (l) => l.live === 0, 2_000);
  }
  for (const pg of pgids) active.delete(pg);
  return left;
}

/** Wait (letting libuv reap the leaders, our children) until nothing of these groups is left. */
/** @param {ReadonlySet<number>} pgids */
async function settle(pgids, ms = 5_000) {
  let look = inGroups(pgids);
  for (let t = 0; t < ms && look.procs.length > 0; t += 100) {
    await new Promise((r) => setTimeout(r, 100));
    look = inGroups(pgids);
  }
  return look;
}

function endAll() {
  if (cleaned) return inGroups(new Set(groups.keys()));
  cleaned = true;
  return endGroups(new Set(groups.keys()));
}

// On INT/TERM/HUP: end everything and leave. The measuring is synchronous, so this runs between
// blocks (Ctrl-C also ends the agentctl run in progress, which stops the script at once).
for (const sig of /** @type {const} */ (['SIGINT', 'SIGTERM', 'SIGHUP'])) {
  process.on(sig, () => {
    console.error(`\n${sig}: ending the extra processes`);
    endAll();
    rmSync(work, { recursive: true, force: true });
    process.exit(130);
  });
}

// ---------------------------------------------------------------------------------------------
// the measurement

/** @param {string[]} args */
const agentctl = (args) => ({ cmd: node, args: [bin, '--state-dir', stateDir, ...args], opts: { env, cwd } });
const COMMANDS = [
  { name: 'ps --json', args: ['ps', '--json'] },
  { name: 'reap --dry-run --json', args: ['reap', '--dry-run', '--json'] },
  { name: 'dedupe-workers --dry-run --json', args: ['dedupe-workers', '--dry-run', '--json'] },
];

/**
 * What the commands found among our processes: proof they had real work.
 * @returns {{ error?: string; unmanaged_agents_ours: number | string; unmanaged_agents_total: number; dedupe_groups_ours: Array<{ identity: string; keep: string; duplicates: number }>; dedupe_groups_total: number }}
 */
function sanity() {
  try {
    return findings();
  } catch (err) {
    return { error: String(/** @type {Error} */ (err).message).slice(0, 200), unmanaged_agents_ours: '?', unmanaged_agents_total: 0, dedupe_groups_ours: [], dedupe_groups_total: 0 };
  }
}
function findings() {
  const ps = JSON.parse(spawnSync(node, agentctl(['ps', '--json']).args, { env, cwd, encoding: 'utf8', maxBuffer: 64 << 20 }).stdout);
  const dd = JSON.parse(spawnSync(node, agentctl(['dedupe-workers', '--dry-run', '--json']).args, { env, cwd, encoding: 'utf8', maxBuffer: 64 << 20 }).stdout);
  /** @param {string} cmd */
  const ours = (cmd) => cmd.includes(work);
  /** @typedef {{ identity: string; keep: { command: string }; duplicates: unknown[] }} Group */
  return {
    unmanaged_agents_ours: ps.unmanaged.filter((/** @type {{ command: string }} */ a) => ours(a.command)).length,
    unmanaged_agents_total: ps.unmanaged.length,
    dedupe_groups_ours: dd.groups
      .filter((/** @type {Group} */ g) => ours(g.keep.command))
      .map((/** @type {Group} */ g) => ({ identity: g.identity, keep: g.keep.command.replace(work, '$TMP'), duplicates: g.duplicates.length })),
    dedupe_groups_total: dd.groups.length,
  };
}

/** @type {Array<{ extra: number; extra_alive: number; proc_entries: number; cpu_busy_pct: number; results: ReturnType<typeof interleaved>; sanity: ReturnType<typeof sanity> }>} */
const blocks = [];
let exitCode = 0;
/** @param {number} n */
const fmt = (n) => n.toLocaleString('en-US');
try {
  const lim = limits();
  const before = countProc();
  const peak = before + /** @type {number} */ (LEVELS[LEVELS.length - 1]) + 100;
  console.log(`limits: ulimit -u ${lim.ulimit_u}, pid_max ${lim.pid_max}, threads-max ${lim.threads_max}; ${before} entries in /proc now, ${cpus().length} CPUs`);
  if (!(peak <= 0.5 * Math.min(lim.ulimit_u, lim.pid_max ?? Infinity, lim.threads_max ?? Infinity))) {
    throw new Error(`refusing: ${peak} processes would exceed half of the process limits`);
  }
  const python = realPython();
  console.log(python ? `python3: ${python}` : 'python3 not on PATH: sh worker copies only');

  timeOnce(node, agentctl(['ps', '--json']).args, { env, cwd }); // creates the state db
  let alive = 0;
  for (const target of BLOCKS) {
    await new Promise((r) => setImmediate(r)); // the measuring is synchronous: let a signal in here
    const t0 = Date.now();
    if (target > alive) {
      if (alive === 0) alive += startSpecials(python, target);
      startFillers(target - alive, target);
    } else if (target < alive) {
      const drop = new Set([...active].filter((pg) => /** @type {{ level: number }} */ (groups.get(pg)).level > target));
      const left = endGroups(drop);
      const look = await settle(drop);
      if (left.live || look.procs.length) throw new Error(`could not end the processes of the +${fmt(alive)} block`);
    }
    alive = target;
    const ours = waitReady();
    const host = countProc();
    console.log(
      `+${fmt(target)}: ${ours} extra processes ${blocks.length && target < /** @type {{ extra: number }} */ (blocks[blocks.length - 1]).extra ? 'left' : 'up'} in ${Date.now() - t0} ms, ${host} entries in /proc; measuring ...`,
    );
    const cpu0 = cpuTicks();
    const cases = [{ name: 'node -e 0', cmd: node, args: ['-e', '0'], opts: { env, cwd } }, ...COMMANDS.map((c) => ({ name: c.name, ...agentctl(c.args) }))];
    let res;
    for (let attempt = 1; !res; attempt++) {
      try {
        res = interleaved(cases, RUNS, WARMUP);
      } catch (err) {
        // another session rebuilding dist/ makes a run fail mid-write; measure the block again
        if (attempt >= 3) throw err;
        console.log(`  a run failed (${/** @type {string} */ (String(/** @type {Error} */ (err).message).split('\n')[0]).slice(-120)}); dist/ being rebuilt? measuring this block again in 5 s`);
        sleepMs(5000);
      }
    }
    blocks.push({ extra: target, extra_alive: ours, proc_entries: host, cpu_busy_pct: cpuBusy(cpu0), results: res, sanity: sanity() });
  }

  // ------------------------------------------------------------------------------------------
  // the table: per size, the mean of its blocks' medians
  const names = ['node -e 0', ...COMMANDS.map((c) => c.name)];
  const levels = LEVELS.map((extra) => {
    const bs = blocks.filter((b) => b.extra === extra);
    /** @type {(b: typeof bs[number], n: string) => number} */
    const median = (b, n) => /** @type {{ median_ms: number }} */ (b.results.find((r) => r.name === n)).median_ms;
    const ms = Object.fromEntries(names.map((n) => [n, round(bs.reduce((a, b) => a + median(b, n), 0) / bs.length)]));
    return { extra, blocks: bs.length, ms, medians: Object.fromEntries(names.map((n) => [n, bs.map((b) => median(b, n))])) };
  });
  /** @type {Array<Record<string, unknown>>} */
  const rows = [];
  const summary = [];
  const [first, mid, last] = /** @type {[typeof levels[number], typeof levels[number], typeof levels[number]]} */ (levels);
  for (const c of COMMANDS) {
    /** @param {typeof levels[number]} l */
    const at = (l) => /** @type {number} */ (l.ms[c.name]);
    /** @param {typeof levels[number]} l */
    const base = (l) => /** @type {number} */ (l.ms['node -e 0']);
    for (const l of levels) {
      const ratio = at(l) / base(l);
      const isGoal = l === last;
      rows.push({
        figure: `${c.name}, +${fmt(l.extra)} procs`,
        'agentctl ms': at(l),
        'node -e 0 ms': base(l),
        ratio: round(ratio, 2),
        goal: isGoal ? `<= ${GOAL_RATIO}x` : '',
        ok: isGoal ? (ratio <= GOAL_RATIO ? 'yes' : 'NO') : '',
      });
    }
    const per1k = (at(last) - at(first)) / ((last.extra - first.extra) / 1000);
    const slope1 = (at(mid) - at(first)) / ((mid.extra - first.extra) / 1000);
    const slope2 = (at(last) - at(mid)) / ((last.extra - mid.extra) / 1000);
    const linear = slope2 <= 1.5 * Math.max(slope1, 0) + 2;
    rows.push({ figure: `${c.name}, ms per 1,000 procs`, 'agentctl ms': round(per1k, 2), 'node -e 0 ms': base(last), ratio: round(per1k / base(last), 3), goal: 'linear', ok: linear ? 'yes' : 'NO' });
    const ratio5k = at(last) / base(last);
    summary.push({
      command: c.name,
      per_1000_ms: round(per1k, 2),
      slope_100_2500_ms_per_1000: round(slope1, 2),
      slope_2500_5000_ms_per_1000: round(slope2, 2),
      linear,
      ratio_at_5000: round(ratio5k, 2),
      ok_at_5000: ratio5k <= GOAL_RATIO,
    });
    if (!linear || ratio5k > GOAL_RATIO) exitCode = 1;
  }
  console.log('');
  printTable(rows, ['figure', 'agentctl ms', 'node -e 0 ms', 'ratio', 'goal', 'ok']);
  console.log('');
  for (const s of summary) console.log(`${s.command}: ${s.slope_100_2500_ms_per_1000} ms per 1,000 procs from 100 to 2,500, ${s.slope_2500_5000_ms_per_1000} from 2,500 to 5,000`);
  console.log(`medians per block (up, down), ms: ${names.map((n) => `${n}: ${levels.map((l) => /** @type {number[]} */ (l.medians[n]).join('/')).join(', ')}`).join('; ')}`);
  for (const b of blocks) {
    const s = b.sanity;
    console.log(
      `+${fmt(b.extra)}: ${b.proc_entries} /proc entries (${b.extra_alive} ours), host CPU ${b.cpu_busy_pct}% busy; ps saw ${s.unmanaged_agents_ours} of our 5 claude; dedupe grouped ${s.dedupe_groups_ours.map((g) => `${g.identity} (${g.duplicates} dup)`).join(', ') || 'nothing of ours'}; groups not ours: ${s.dedupe_groups_total - s.dedupe_groups_ours.length}`,
    );
  }

  // ------------------------------------------------------------------------------------------
  // cleanup, checked, then the record
  const left = endAll();
  const after = await settle(new Set(groups.keys()));
  const afterCount = countProc();
  console.log(`\ncleanup: ${groups.size} process groups ended; ${after.live} live and ${after.zombies} zombie processes of ours left; ${afterCount} entries in /proc (${before} before)`);
  if (left.live || after.live) {
    exitCode = 1;
    console.error(`NOT CLEAN: still alive: ${after.pids.slice(0, 20).join(' ')}`);
  }
  const out = join(root, 'bench', 'results', 'scale.json');
  writeFileSync(
    out,
    `${JSON.stringify({ when: new Date().toISOString(), node: process.version, cpus: cpus().length, runs: RUNS, warmup: WARMUP, limits: { ...lim, ulimit_u: String(lim.ulimit_u) }, python: python ?? null, proc_entries_before: before, proc_entries_after_cleanup: afterCount, left_after_cleanup: { live: after.live, zombies: after.zombies, pids: after.pids }, levels, blocks, summary, rows }, null, 2)}\n`,
  );
  console.log(`written to ${out}`);
} finally {
  endAll();
  rmSync(work, { recursive: true, force: true });
}
process.exitCode = exitCode;
