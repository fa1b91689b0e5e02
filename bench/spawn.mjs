#!/usr/bin/env node
// spawn: admission cost, cap correctness under a burst, --wait queueing and the memory a
// detached agent costs, each against a peer measured in the same run (DESIGN.md,
// "Performance"):
//   1. admission latency: median wall time of `agentctl spawn -d --name jN -- sleep 30` vs
//      GNU parallel `sem --id benchY -j N sleep 30` with N just above the jobs started (sem
//      probes system limits by forking up to -j processes on every call, so a big -j measures
//      that probe, not admission: -j 1000 took 5-7 s here) vs `pm2 start sleep --name jN -- 30` with pm2's daemon warm, interleaved.
//      Goals: <= 0.9x sem, <= 0.6x pm2.
//   2. overshoot: 100 concurrent foreground `spawn --group c --max 3` of a fixture that logs
//      start/end timestamps and sleeps 300 ms; most intervals alive at once must be <= 3, and
//      every exit code 0 (ran) or 75 (no slot).
//   3. --wait makespan: 30 x `spawn --wait 5m --group w --max 3 -- sleep 1` started at once;
//      wall time until all exit vs the ideal 10 s (goal <= 1.05x), and the same with
//      `sem -j 3` (DESIGN: 1.23x). Beside it, the floor for any Node command line on this host:
//      the ideal plus the time until 3 of 30 `node -e 0` started at once have exited.
//   4. supervision RSS: 5 detached `sleep 60`, summed VmRSS of their /bin/sh supervisors and what runs under them (the log capper, its sleep), PSS too
//      (goal <= 5 MB per agent) vs the RSS of pm2's God Daemon holding the same 5 jobs.
//
// Usage:  node bench/spawn.mjs [--runs 20]     (build first if dist/ is stale: npm run build)
// Peers (each is skipped with a message when missing):
//   sem:  apt-get update && apt-get install -y parallel
//   pm2:  npm install --prefix /tmp/pm2peer pm2      (looked up on PATH, then there)
// Prints one table and writes bench/results/spawn.json. Everything runs in temp dirs
// (agentctl --state-dir, PM2_HOME, PARALLEL_HOME) that are removed at the end; every process
// started is ended by its PID (agentctl runs: by process group, after checking the start time).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { bin, median, printTable, root, round, runsFromArgv, timeOnce } from './lib.mjs';

const node = process.execPath;
const RUNS = runsFromArgv(20);
const WARMUP = 3;

// ---------------------------------------------------------------------------------------------
// small helpers

const work = mkdtempSync(join(tmpdir(), 'agentctl-bench-spawn-'));
/** @param {string} label */
const tmp = (label) => mkdtempSync(join(work, `${label}-`));
/** @param {number} ms */
const sleepSync = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
/** @param {number} kb */
const mb = (kb) => round(kb / 1024, 2);

/** Environment for agentctl: no inherited AGENTCTL_* settings or user config, throttle off. */
const agentEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AGENTCTL_')));
Object.assign(agentEnv, { AGENTCTL_DISABLE_THROTTLE: '1', NO_COLOR: '1', XDG_CONFIG_HOME: tmp('xdg-config') });
/** Working directory without an ./agentctl.toml. */
const cwd = tmp('cwd');

/** @param {string} cmd */
function which(cmd) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) if (dir && existsSync(join(dir, cmd))) return join(dir, cmd);
  return undefined;
}

/** /proc/PID/stat fields we need (comm may hold spaces, so split after the last ')'). */
/**
 * @typedef {{ pid: number; startTime: string | undefined }} Proc
 * @param {number | undefined} pid
 */
function procStat(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' '); // f[0] is field 3 (state)
    return { state: f[0], ppid: Number(f[1]), pgid: Number(f[2]), startTime: f[19] };
  } catch {
    return undefined;
  }
}
/** @param {number} pid */
const cmdline = (pid) => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
  } catch {
    return '';
  }
};
/** @param {number} pid */
const vmRssKb = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
/** @param {number} pid */
const pssKb = (pid) => Number(/^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? NaN);
/**
 * The supervision of one run: its supervisor and every process under it but the run's child
 * (the log capper, a watchdog, their `sleep`s), as RSS summed (shared pages counted in each)
 * and PSS summed (shared pages split among their users).
 * @param {number} sup
 * @param {number} child
 */
function supervisionKb(sup, child) {
  /** @type {Map<number, number[]>} */
  const byParent = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const st = procStat(Number(d));
    if (st) byParent.set(st.ppid, [...(byParent.get(st.ppid) ?? []), Number(d)]);
  }
  /** @type {number[]} */
  const pids = [];
  const walk = (/** @type {number} */ p) => {
    pids.push(p);
    for (const c of byParent.get(p) ?? []) if (c !== child) walk(c);
  };
  walk(sup);
  let rss = 0;
  let pss = 0;
  for (const p of pids) {
    try {
      rss += vmRssKb(p);
      pss += pssKb(p);
    } catch {
      /* ended meanwhile (a sleep of the capper) */
    }
  }
  return { rss, pss, processes: pids.length };
}
/** Is PID still the process that had this start time (and not a zombie)? */
/** @param {Proc} p */
const alive = (p) => {
  const s = procStat(p.pid);
  return s !== undefined && s.startTime === p.startTime && s.state !== 'Z';
};
/**
 * @param {Proc} p
 * @param {number} ms
 */
function waitGone(p, ms) {
  const until = Date.now() + ms;
  while (alive(p) && Date.now() < until) sleepSync(20);
  return !alive(p);
}

/**
 * End one process (group) we started, by PID, only while the PID still names it: TERM, then
 * KILL after a grace. `group` sends to the process group, which is right for agentctl runs:
 * each child leads its own group.
 */
/** @param {Proc} p */
function endProcess(p, { group = false, graceMs = 2000 } = {}) {
  if (!alive(p)) return;
  const target = group ? -p.pid : p.pid;
  try {
    process.kill(target, 'SIGTERM');
  } catch {
    return;
  }
  if (!waitGone(p, graceMs) && alive(p)) {
    try {
      process.kill(target, 'SIGKILL');
    } catch {
      /* gone */
    }
    waitGone(p, 1000);
  }
}

// ---------------------------------------------------------------------------------------------
// cleanup registry: everything started is recorded here and ended in cleanup()

/** @type {string[]} */
const stateDirs = []; // agentctl --state-dir of each scenario
/** @type {string[]} */
const pm2Homes = []; // PM2_HOME of each scenario
/** @type {Set<string>} */
const semIds = new Set(); // sem --id values with jobs that may still run
/** @type {Set<import('node:child_process').ChildProcess>} */
const liveChildren = new Set(); // async children (foreground agentctl, sem callers)
/** @type {Map<string, Proc & { what: string }>} */
const seen = new Map(); // every process we know we caused (pid -> {pid, startTime, what}), checked at the end
/** @type {<P extends Proc | undefined>(p: P, what: string) => P} */
const note = (p, what) => (p && p.startTime !== undefined && seen.set(`${p.pid}:${p.startTime}`, { ...p, what }), p);

/** The run's child and its /bin/sh supervisor, from pids/<name>.pid (PID, then a JSON line). */
/**
 * @param {string} stateDir
 * @param {string} name
 */
function runProcesses(stateDir, name) {
  const [first, json] = readFileSync(join(stateDir, 'pids', `${name}.pid`), 'utf8').split('\n');
  const pid = Number(first);
  /** @type {string} */
  const startTime = JSON.parse(/** @type {string} */ (json)).start_time;
  const st = procStat(pid);
  const sup = st && st.startTime === startTime ? { pid: st.ppid, startTime: procStat(st.ppid)?.startTime } : undefined;
  return { child: { pid, startTime }, sup: sup?.startTime !== undefined && cmdline(sup.pid).includes('agentctl-supervise') ? sup : undefined };
}

/** End a detached run: TERM its child's process group; its supervisor then records the exit and leaves. */
/**
 * @param {string} stateDir
 * @param {string} name
 */
function endRun(stateDir, name) {
  const { child, sup } = runProcesses(stateDir, name);
  note(child, `agentctl run ${name}`);
  note(sup, `supervisor of ${name}`);
  endProcess(child, { group: true });
  if (sup && !waitGone(sup, 2000)) endProcess(sup); // should not happen: it exits after its child
}

let cleanedUp = false;
function cleanup() {
  if (cleanedUp) return;
  cleanedUp = true;
  for (const c of liveChildren) if (c.exitCode === null && c.signalCode === null) endProcess({ pid: /** @type {number} */ (c.pid), startTime: procStat(c.pid)?.startTime });
  for (const dir of stateDirs) {
    const pidDir = join(dir, 'pids');
    if (!existsSync(pidDir)) continue;
    for (const f of readdirSync(pidDir).filter((x) => x.endsWith('.pid'))) {
      try {
        endRun(dir, f.slice(0, -4));
      } catch {
        /* a half-written pid file of a run that never started */
      }
    }
  }
  for (const home of pm2Homes) pm2Shutdown(home);
  for (const id of semIds) spawnSync(/** @type {string} */ (peers.sem), ['--will-cite', '--wait', '--id', id], { env: semEnv, stdio: 'ignore', timeout: 60_000 });
  // sem's last jobs may still be leaving files under PARALLEL_HOME as sem --wait returns: try
  // again (rmSync's maxRetries retries only the last rmdir, not the listing)
  for (let attempt = 1; ; attempt++) {
    try {
      rmSync(work, { recursive: true, force: true });
      break;
    } catch (err) {
      if (/** @type {NodeJS.ErrnoException} */ (err).code !== 'ENOTEMPTY' || attempt >= 20) throw err;
      sleepSync(100);
    }
  }
  // anything we know of still alive? (sem jobs are covered by sem --wait above)
  const left = [...seen.values()].filter((p) => !waitGone(p, 1000));
  if (left.length) console.error(`cleanup: still running: ${left.map((p) => `${p.pid} (${p.what})`).join(', ')}`);
  else console.log(`cleanup: all ${seen.size} processes this bench knows of have ended; temp dirs removed`);
}

// ---------------------------------------------------------------------------------------------
// peers

const peers = {
  sem: which('sem'),
  pm2: which('pm2') ?? (existsSync('/tmp/pm2peer/node_modules/.bin/pm2') ? '/tmp/pm2peer/node_modules/.bin/pm2' : undefined),
};
const HINT = {
  sem: 'install with: apt-get update && apt-get install -y parallel   (GNU parallel provides sem)',
  pm2: 'install with: npm install --prefix /tmp/pm2peer pm2   (found on PATH or in /tmp/pm2peer/node_modules/.bin)',
};
// sem keeps semaphores under PARALLEL_HOME; --will-cite silences its citation notice
const semEnv = { ...process.env, PARALLEL_HOME: tmp('parallel-home') };
/** @type {{ agentctl: string; sem: string | null; pm2: string | null; dist_built?: string }} */
const versions = {
  agentctl: spawnSync(node, [bin, '--version'], { encoding: 'utf8', env: agentEnv, cwd }).stdout.trim(),
  sem: peers.sem ? (/GNU parallel \S+/.exec(spawnSync(peers.sem, ['--version'], { encoding: 'utf8', env: semEnv }).stdout)?.[0] ?? 'unknown') : null,
  // read pm2's version from its package.json: `pm2 --version` would start a daemon
  pm2: peers.pm2
    ? (() => {
        try {
          return JSON.parse(readFileSync(join(dirname(realpathSync(peers.pm2)), '..', 'package.json'), 'utf8')).version;
        } catch {
          return 'unknown';
        }
      })()
    : null,
};

/** @param {string} home */
function pm2Env(home) {
  return { ...process.env, PM2_HOME: home };
}
/** Start pm2's daemon in a fresh PM2_HOME (pm2 ping spawns it) and return the home. */
/** @param {string} label */
function pm2Up(label) {
  const home = tmp(label);
  pm2Homes.push(home);
  // stdio ignored: a pipe would be inherited by the daemon and keep spawnSync waiting
  const r = spawnSync(/** @type {string} */ (peers.pm2), ['ping'], { env: pm2Env(home), cwd, stdio: 'ignore', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`pm2 ping (daemon start) exited ${r.status}`);
  return home;
}
/** @param {string} home */
function pm2Daemon(home) {
  try {
    const pid = Number(readFileSync(join(home, 'pm2.pid'), 'utf8'));
    return cmdline(pid).includes('God Daemon') ? note({ pid, startTime: procStat(pid)?.startTime }, 'pm2 God Daemon') : undefined;
  } catch {
    return undefined;
  }
}
/** PIDs of the apps pm2 runs, with start times, from `pm2 jlist`. */
/** @param {string} home */
function pm2Apps(home) {
  const r = spawnSync(/** @type {string} */ (peers.pm2), ['jlist'], { env: pm2Env(home), cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 30_000 });
  try {
    return JSON.parse(r.stdout)
      .filter((/** @type {{ pid: number }} */ a) => a.pid > 0)
      .map((/** @type {{ pid: number; name: string }} */ a) => note({ pid: a.pid, startTime: procStat(a.pid)?.startTime }, `pm2 app ${a.name}`));
  } catch {
    return [];
  }
}
/** pm2 delete all + pm2 kill, then make sure the daemon and its apps are gone (by PID). */
/** @param {string} home */
function pm2Shutdown(home) {
  const daemon = pm2Daemon(home);
  if (!daemon) return;
  const apps = pm2Apps(home);
  spawnSync(/** @type {string} */ (peers.pm2), ['delete', 'all'], { env: pm2Env(home), cwd, stdio: 'ignore', timeout: 30_000 });
  spawnSync(/** @type {string} */ (peers.pm2), ['kill'], { env: pm2Env(home), cwd, stdio: 'ignore', timeout: 30_000 });
  for (const p of [...apps, daemon]) if (!waitGone(p, 2000)) endProcess(p);
}

/** Run a command without waiting; resolves with exit code, signal, time of exit and stderr. */
/**
 * @typedef {{ code: number | null; signal: NodeJS.Signals | null; exitedAt: bigint; stderr: string }} Ran
 * @param {string} cmd
 * @param {string[]} args
 * @param {{ env?: NodeJS.ProcessEnv; stdio?: 'ignore' }} opts
 * @returns {Promise<Ran>}
 */
function run(cmd, args, opts) {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'ignore', opts.stdio === 'ignore' ? 'ignore' : 'pipe'], env: opts.env, cwd });
    liveChildren.add(c);
    note({ pid: /** @type {number} */ (c.pid), startTime: procStat(c.pid)?.startTime }, `${cmd} ${args.slice(0, 6).join(' ')}`);
    let err = '';
    c.stderr?.on('data', (d) => (err += d));
    /** @type {bigint | undefined} */
    let exitedAt;
    c.once('exit', () => (exitedAt = process.hrtime.bigint()));
    // 'close' also waits for the stderr pipe, which the foreground child shares
    c.once('close', (code, signal) => {
      liveChildren.delete(c);
      resolve({ code, signal, exitedAt: exitedAt ?? process.hrtime.bigint(), stderr: err.trim() });
    });
    c.once('error', (e) => {
      liveChildren.delete(c);
      resolve({ code: null, signal: null, exitedAt: process.hrtime.bigint(), stderr: String(e) });
    });
  });
}
/**
 * @param {bigint} t0
 * @param {bigint} t1
 */
const sinceS = (t0, t1) => Number(t1 - t0) / 1e9;

/**
 * agentctl's own record of a scenario, from `agentctl events --json`: per run, when it was
 * admitted and when it exited (epoch ms), and the kinds of events seen.
 */
/** @param {string} stateDir */
function agentRecord(stateDir) {
  const r = spawnSync(node, [bin, 'events', '--json', '--limit', '10000', '--state-dir', stateDir], { env: agentEnv, cwd, encoding: 'utf8', timeout: 60_000 });
  /** @type {Map<string, { admitted?: number; exited?: number }>} */
  const runs = new Map();
  /** @type {Record<string, number>} */
  const kinds = {};
  for (const e of JSON.parse(r.stdout).events) {
    kinds[e.kind] = (kinds[e.kind] ?? 0) + 1;
    const id = e.data?.run_id;
    if (!id || (e.kind !== 'spawn.admitted' && e.kind !== 'run.exited')) continue;
    const run = runs.get(id) ?? {};
    run[e.kind === 'spawn.admitted' ? 'admitted' : 'exited'] = Date.parse(e.time);
    runs.set(id, run);
  }
  return { runs: [...runs.values()], kinds };
}

// ---------------------------------------------------------------------------------------------
// 1. admission latency

/**
 * interleaved() from lib.mjs times one fixed argv per case; here each run needs a fresh
 * --name and an untimed step after it, so this is the same a b c a b c loop with hooks.
 * Each agentctl run is ended right after it is timed: at throttle level 0 a group holds at
 * most 5 live runs, so letting them pile up would turn later admissions into refusals. The pm2
 * job is deleted likewise, so both tools admit into the same steady state. sem jobs just end
 * (sleep 30).
 */
function admission() {
  const stateDir = tmp('state-admission');
  stateDirs.push(stateDir);
  // sem -j N first forks up to N processes to probe the system's limits, every call; with a
  // big -j that probe, not admission, is most of its time. This -j still has room for every
  // job this loop starts (RUNS + WARMUP in all), so sem never waits for a slot.
  const semSmallJ = RUNS + WARMUP;
  let n = 0;
  /** @type {Array<{ name: string; time: () => number }>} */
  const cases = [
    {
      name: 'agentctl',
      time: () => {
        const name = `j${n++}`;
        const ms = timeOnce(node, [bin, 'spawn', '-d', '--state-dir', stateDir, '--name', name, '--', 'sleep', '30'], { env: agentEnv, cwd, timeout: 60_000 });
        endRun(stateDir, name);
        return ms;
      },
    },
  ];
  // floors for reading the agentctl figure (not goals): Node itself, and any agentctl command
  cases.push({ name: 'node -e 0', time: () => timeOnce(node, ['-e', '0'], { env: agentEnv, cwd }) });
  cases.push({ name: 'agentctl --version', time: () => timeOnce(node, [bin, '--version'], { env: agentEnv, cwd }) });
  if (peers.sem) {
    semIds.add('benchX').add('benchY');
    // stdio ignored: sem's background job inherits a pipe and spawnSync would wait 30 s for it
    /** @type {import('./lib.mjs').TimeOpts} */
    const semOpts = { env: semEnv, cwd, stdio: 'ignore', timeout: 60_000 };
    cases.push({ name: `sem -j ${semSmallJ}`, time: () => timeOnce(/** @type {string} */ (peers.sem), ['--will-cite', '--id', 'benchY', '-j', String(semSmallJ), 'sleep', '30'], semOpts) });
  }
  if (peers.pm2) {
    const home = pm2Up('pm2-admission');
    const env = pm2Env(home);
    cases.push({
      name: 'pm2 start',
      time: () => {
        const name = `j${n++}`;
        const ms = timeOnce(/** @type {string} */ (peers.pm2), ['start', 'sleep', '--name', name, '--', '30'], { env, cwd, timeout: 60_000 });
        spawnSync(/** @type {string} */ (peers.pm2), ['delete', name], { env, cwd, stdio: 'ignore', timeout: 30_000 });
        return ms;
      },
    });
  }
  for (let i = 0; i < WARMUP; i++) for (const c of cases) c.time();
  const times = cases.map(() => /** @type {number[]} */ ([]));
  for (let i = 0; i < RUNS; i++) cases.forEach((c, j) => /** @type {number[]} */ (times[j]).push(c.time()));
  for (const home of pm2Homes.splice(0)) pm2Shutdown(home);
  /** @type {(j: number) => number[]} */
  const at = (j) => /** @type {number[]} */ (times[j]);
  /** @type {Record<string, { median_ms: number; min_ms: number; runs: number; samples_ms: number[] }>} */
  const out = Object.fromEntries(cases.map((c, j) => [c.name, { median_ms: round(median(at(j))), min_ms: round(Math.min(...at(j))), runs: RUNS, samples_ms: at(j).map((t) => round(t)) }]));
  return out;
}

// ---------------------------------------------------------------------------------------------
// 2. overshoot: 100 concurrent foreground spawns on 3 slots

// The fixture logs "start NAME T" and, 300 ms later, "end NAME T"; T is CLOCK_MONOTONIC in ns
// (process.hrtime), the same clock in every process on the host. Small appends are atomic.
const FIXTURE = `const fs=require('fs'),f=process.argv[1],n=process.env.AGENTCTL_NAME;
const t=()=>process.hrtime.bigint().toString();
fs.appendFileSync(f,'start '+n+' '+t()+'\\n');
setTimeout(()=>fs.appendFileSync(f,'end '+n+' '+t()+'\\n'),300);`;

/** Most intervals open at once (a sweep; an end sorts before a start at the same instant). */
/**
 * @template {bigint | number} T
 * @param {ReadonlyArray<readonly [T, T]>} intervals
 */
function maxOverlap(intervals) {
  const ev = intervals
    .flatMap(
      ([s, e]) =>
        /** @type {Array<[T, number]>} */ ([
          [s, 1],
          [e, -1],
        ]),
    )
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1]));
  let cur = 0;
  let max = 0;
  for (const [, d] of ev) max = Math.max(max, (cur += d));
  return max;
}

async function overshoot() {
  const N = 100;
  const MAX = 3;
  const stateDir = tmp('state-overshoot');
  stateDirs.push(stateDir);
  const log = join(stateDir, 'fixture.log');
  writeFileSync(log, '');
  const results = await Promise.all(
    Array.from({ length: N }, (_, i) => run(node, [bin, 'spawn', '--state-dir', stateDir, '--name', `c${i}`, '--group', 'c', '--max', String(MAX), '--', node, '-e', FIXTURE, log], { env: agentEnv })),
  );
  /** @type {Record<string, number>} */
  const codes = {};
  for (const r of results) codes[r.code ?? `signal ${r.signal}`] = (codes[r.code ?? `signal ${r.signal}`] ?? 0) + 1;
  const others = results.filter((r) => r.code !== 0 && r.code !== 75);
  // pair the log lines into intervals; a start without an end stays open to the end
  /** @type {Map<string, bigint>} */
  const starts = new Map();
  /** @type {Map<string, bigint>} */
  const ends = new Map();
  for (const line of readFileSync(log, 'utf8').split('\n').filter(Boolean)) {
    const [kind, name, t] = line.split(' ');
    (kind === 'start' ? starts : ends).set(/** @type {string} */ (name), BigInt(/** @type {string} */ (t)));
  }
  const FAR = 1n << 62n;
  const intervals = [...starts].map(([name, s]) => /** @type {[bigint, bigint]} */ ([s, ends.get(name) ?? FAR]));
  // cross-check with agentctl's own books: admitted..exited intervals of the same runs
  const rec = agentRecord(stateDir);
  return {
    concurrent: N,
    max: MAX,
    max_alive: maxOverlap(intervals),
    overshoot: Math.max(0, maxOverlap(intervals) - MAX),
    exit_codes: codes,
    ran: intervals.length,
    unfinished_in_log: [...starts.keys()].filter((k) => !ends.has(k)).length,
    max_registered_at_once: maxOverlap(rec.runs.map((r) => /** @type {[number, number]} */ ([r.admitted, r.exited ?? Number.MAX_SAFE_INTEGER]))),
    events: rec.kinds,
    other_exit_examples: others.slice(0, 5).map((r) => ({ code: r.code, signal: r.signal, stderr: r.stderr.slice(0, 400) })),
  };
}

// ---------------------------------------------------------------------------------------------
// 3. --wait makespan: 30 one-second jobs on 3 slots, ideal 10 s

async function waitMakespan() {
  const N = 30;
  const SLOTS = 3;
  const ideal = Math.ceil(N / SLOTS) * 1;
  const stateDir = tmp('state-wait');
  stateDirs.push(stateDir);
  const t0 = process.hrtime.bigint();
  const wall0 = Date.now();
  const rs = await Promise.all(
    Array.from({ length: N }, (_, i) =>
      run(node, [bin, 'spawn', '--state-dir', stateDir, '--wait', '5m', '--name', `w${i}`, '--group', 'w', '--max', String(SLOTS), '--', 'sleep', '1'], { env: agentEnv }),
    ),
  );
  const agentS = sinceS(
    t0,
    rs.reduce((m, r) => (r.exitedAt > m ? r.exitedAt : m), t0),
  );
  // where the time beyond the ideal goes: until the first admission (30 agentctl starting at
  // once), and the slot hand-offs (the k+3-th admission after the k-th exit)
  const rec = agentRecord(stateDir).runs;
  const admits = /** @type {number[]} */ (rec.map((r) => r.admitted)).sort((a, b) => a - b);
  const exits = /** @type {number[]} */ (rec.map((r) => r.exited).filter(Boolean)).sort((a, b) => a - b);
  const handoffs = admits.slice(SLOTS).map((t, k) => t - /** @type {number} */ (exits[k]));
  /**
   * @typedef {{ jobs: number; slots: number; ideal_s: number;
   *   agentctl: { makespan_s: number; ratio_to_ideal: number; first_admission_ms: number | null; handoff_ms: { median: number; max: number } | null; max_registered_at_once: number; not_zero: Array<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> };
   *   sem: { makespan_s: number; ratio_to_ideal: number; callers_not_zero: number; wait_exit: number | null } | null;
   *   node_floor: { third_exit_ms: number; last_exit_ms: number; makespan_s: number; ratio_to_ideal: number } }} Makespan
   */
  const out = /** @type {Makespan} */ ({
    jobs: N,
    slots: SLOTS,
    ideal_s: ideal,
    agentctl: {
      makespan_s: round(agentS, 2),
      ratio_to_ideal: round(agentS / ideal, 3),
      first_admission_ms: admits.length ? /** @type {number} */ (admits[0]) - wall0 : null,
      handoff_ms: handoffs.length ? { median: median(handoffs), max: Math.max(...handoffs) } : null,
      max_registered_at_once: maxOverlap(rec.map((r) => /** @type {[number, number]} */ ([r.admitted, r.exited ?? Number.MAX_SAFE_INTEGER]))),
      not_zero: rs.filter((r) => r.code !== 0).map((r) => ({ code: r.code, signal: r.signal, stderr: r.stderr.slice(0, 300) })),
    },
    sem: null,
  });
  // the floor for any command line written in Node: 30 `node -e 0` started at once on this
  // host. The third to finish is the earliest three slots could fill, so the ideal plus that
  // is the best makespan such a tool could reach here, before doing any work of its own.
  const f0 = process.hrtime.bigint();
  const nodes = await Promise.all(Array.from({ length: N }, () => run(node, ['-e', '0'], { env: agentEnv })));
  const ends = nodes.map((r) => sinceS(f0, r.exitedAt) * 1000).sort((x, y) => x - y);
  const third = /** @type {number} */ (ends[SLOTS - 1]);
  out.node_floor = {
    third_exit_ms: Math.round(third),
    last_exit_ms: Math.round(/** @type {number} */ (ends[ends.length - 1])),
    makespan_s: round(ideal + third / 1000, 2),
    ratio_to_ideal: round((ideal + third / 1000) / ideal, 3),
  };
  if (peers.sem) {
    semIds.add('benchW');
    const s0 = process.hrtime.bigint();
    // each sem returns once its job has started; then sem --wait returns when all are done
    const callers = await Promise.all(
      Array.from({ length: N }, () => run(/** @type {string} */ (peers.sem), ['--will-cite', '-j', String(SLOTS), '--id', 'benchW', 'sleep', '1'], { env: semEnv, stdio: 'ignore' })),
    );
    const w = spawnSync(/** @type {string} */ (peers.sem), ['--will-cite', '--wait', '--id', 'benchW'], { env: semEnv, cwd, stdio: 'ignore', timeout: 300_000 });
    const semS = sinceS(s0, process.hrtime.bigint());
    out.sem = { makespan_s: round(semS, 2), ratio_to_ideal: round(semS / ideal, 3), callers_not_zero: callers.filter((r) => r.code !== 0).length, wait_exit: w.status };
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// 4. supervision RSS: 5 detached sleep 60, each supervisor with what runs under it (the log
//    capper and its sleep) but the run's own child

function supervisionRss() {
  const N = 5;
  const stateDir = tmp('state-rss');
  stateDirs.push(stateDir);
  /** @type {Array<{ run: string; pid: number; supervisor: number; rss_kb: number; pss_kb: number; processes: number }>} */
  const sups = [];
  for (let i = 0; i < N; i++) {
    const r = spawnSync(node, [bin, 'spawn', '-d', '--json', '--state-dir', stateDir, '--name', `r${i}`, '--', 'sleep', '60'], { env: agentEnv, cwd, encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) throw new Error(`spawn -d r${i} exited ${r.status}: ${r.stderr}`);
    const { pid } = JSON.parse(r.stdout);
    const sup = procStat(pid)?.ppid; // the supervisor is the child's parent (stat field 4)
    if (!sup || !cmdline(sup).includes('agentctl-supervise')) throw new Error(`parent ${sup} of run r${i} (PID ${pid}) is not an agentctl-supervise shell: ${cmdline(/** @type {number} */ (sup))}`);
    sups.push({ run: `r${i}`, pid, supervisor: sup, rss_kb: 0, pss_kb: 0, processes: 0 });
  }
  sleepSync(300); // let the shells settle
  for (const s of sups) {
    const k = supervisionKb(s.supervisor, s.pid);
    s.rss_kb = k.rss;
    s.pss_kb = k.pss;
    s.processes = k.processes;
  }
  const agentKb = sups.reduce((a, s) => a + s.rss_kb, 0);
  const agentPssKb = sups.reduce((a, s) => a + s.pss_kb, 0);
  for (const s of sups) endRun(stateDir, s.run);

  /** @type {{ daemon_pid: number; title: string; rss_kb: number; apps: number } | { error: string; rss_kb?: undefined } | null} */
  let pm2 = null;
  if (peers.pm2) {
    const home = pm2Up('pm2-rss');
    const env = pm2Env(home);
    for (let i = 0; i < N; i++) timeOnce(/** @type {string} */ (peers.pm2), ['start', 'sleep', '--name', `r${i}`, '--', '60'], { env, cwd, timeout: 60_000 });
    sleepSync(300);
    const d = pm2Daemon(home);
    pm2 = d ? { daemon_pid: d.pid, title: cmdline(d.pid), rss_kb: vmRssKb(d.pid), apps: pm2Apps(home).length } : { error: 'God Daemon not found' };
    pm2Shutdown(home);
    pm2Homes.splice(pm2Homes.indexOf(home), 1);
  }
  return { agents: N, agentctl: { total_kb: agentKb, per_agent_kb: round(agentKb / N), per_agent_pss_kb: round(agentPssKb / N), supervisors: sups }, pm2 };
}

// ---------------------------------------------------------------------------------------------
// main

/** @param {boolean | null} pass */
const ok = (pass) => (pass === null ? '' : pass ? 'yes' : 'NO');
/**
 * @param {number} a
 * @param {number} b
 */
const ratio = (a, b) => (b ? round(a / b, 2) : null);

process.on('SIGINT', () => {
  console.error('\ninterrupted: cleaning up');
  cleanup();
  process.exit(130);
});

try {
  // stale build check (the bench runs dist/, not src/)
  /** @param {string} dir */
  const newest = (dir) => readdirSync(dir, { recursive: true, encoding: 'utf8' }).reduce((m, f) => Math.max(m, statSync(join(dir, f)).mtimeMs), 0);
  if (newest(join(root, 'src')) > newest(join(root, 'dist'))) console.error('warning: src/ is newer than dist/; run npm run build first');
  const distBuilt = newest(join(root, 'dist'));
  versions.dist_built = new Date(distBuilt).toISOString();

  console.log(
    `agentctl ${versions.agentctl} (dist built ${versions.dist_built}), node ${process.version}, ${cpus().length} CPUs, load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}, ${RUNS} runs per admission case`,
  );
  for (const p of /** @type {const} */ (['sem', 'pm2'])) console.log(peers[p] ? `peer ${p}: ${peers[p]} (${versions[p]})` : `SKIP ${p}: not found; ${HINT[p]}`);
  const ts = JSON.parse(spawnSync(node, [bin, 'throttle-status', '--json', '--state-dir', tmp('state-probe')], { env: agentEnv, cwd, encoding: 'utf8' }).stdout);
  if (ts.agent_processes > 0) console.log(`note: ${ts.agent_processes} unmanaged agent process(es) on this host count against every group's cap`);

  console.log('\n1/4 admission latency (interleaved)...');
  const adm = admission();
  console.log('2/4 overshoot: 100 concurrent spawn --max 3...');
  const ov = await overshoot();
  console.log('3/4 --wait makespan: 30 x 1 s on 3 slots...');
  const mk = await waitMakespan();
  console.log('4/4 supervision RSS: 5 detached agents...');
  const rss = supervisionRss();

  const a = /** @type {{ median_ms: number }} */ (adm.agentctl).median_ms;
  /** @type {Array<Record<string, unknown>>} */
  const rows = [];
  for (const [peer, goal] of /** @type {Array<[string, number]>} */ ([
    [`sem -j ${RUNS + WARMUP}`, 0.9],
    ['pm2 start', 0.6],
  ])) {
    const p = adm[peer];
    const label = `admission ms (median): spawn -d vs ${peer}${peer === 'pm2 start' ? ' (daemon warm)' : ''}`;
    if (!p) rows.push({ figure: label, agentctl: a, peer: 'skipped', ratio: '', goal: `<= ${goal}x`, ok: '' });
    else rows.push({ figure: label, agentctl: a, peer: p.median_ms, ratio: ratio(a, p.median_ms), goal: `<= ${goal}x`, ok: ok(a / p.median_ms <= goal) });
  }
  rows.push({
    figure: `overshoot: most alive at once, ${ov.concurrent} x spawn --max ${ov.max}`,
    agentctl: `${ov.max_alive} (overshoot ${ov.overshoot})`,
    peer: '',
    ratio: '',
    goal: `<= ${ov.max}`,
    ok: ok(ov.overshoot === 0),
  });
  const otherCodes = Object.entries(ov.exit_codes).filter(([c]) => c !== '0' && c !== '75');
  rows.push({
    figure: `exit codes of those ${ov.concurrent} (ran / no slot / other)`,
    agentctl: `${ov.exit_codes[0] ?? 0} / ${ov.exit_codes[75] ?? 0} / ${otherCodes.reduce((s, [, k]) => s + k, 0)}`,
    peer: '',
    ratio: '',
    goal: 'only 0 and 75',
    ok: ok(otherCodes.length === 0),
  });
  rows.push({
    figure: `--wait makespan s, ${mk.jobs} x 1 s on ${mk.slots} slots (ideal ${mk.ideal_s} s)`,
    agentctl: mk.agentctl.makespan_s,
    peer: mk.sem ? `${mk.sem.makespan_s} (sem -j 3)` : 'skipped',
    ratio: `${mk.agentctl.ratio_to_ideal}x ideal${mk.sem ? ` (sem ${mk.sem.ratio_to_ideal}x)` : ''}`,
    goal: '<= 1.05x ideal',
    ok: ok(mk.agentctl.ratio_to_ideal <= 1.05 && mk.agentctl.not_zero.length === 0),
  });
  rows.push({
    figure: `floor for a Node CLI: ideal + 3rd exit of ${mk.jobs} x node -e 0 at once`,
    agentctl: mk.node_floor.makespan_s,
    peer: `3rd exit ${mk.node_floor.third_exit_ms} ms`,
    ratio: `${mk.node_floor.ratio_to_ideal}x ideal`,
    goal: '',
    ok: '',
  });
  const pm2Kb = rss.pm2?.rss_kb;
  rows.push({
    figure: `supervision RSS MB, ${rss.agents} detached agents in all`,
    agentctl: mb(rss.agentctl.total_kb),
    peer: pm2Kb ? `${mb(pm2Kb)} (pm2 God Daemon)` : 'skipped',
    ratio: pm2Kb ? ratio(rss.agentctl.total_kb, pm2Kb) : '',
    goal: '',
    ok: '',
  });
  rows.push({
    figure: 'supervision RSS MB per agent',
    agentctl: mb(rss.agentctl.per_agent_kb),
    peer: pm2Kb ? mb(pm2Kb / rss.agents) : 'skipped',
    ratio: pm2Kb ? ratio(rss.agentctl.per_agent_kb, pm2Kb / rss.agents) : '',
    goal: '<= 5 MB',
    ok: ok(rss.agentctl.per_agent_kb <= 5 * 1024),
  });
  rows.push({
    figure: 'supervision PSS MB per agent (shared pages split)',
    agentctl: mb(rss.agentctl.per_agent_pss_kb),
    peer: '',
    ratio: '',
    goal: '',
    ok: '',
  });

  console.log('');
  printTable(rows, ['figure', 'agentctl', 'peer', 'ratio', 'goal', 'ok']);
  console.log(
    `\nadmission detail (medians, ms): node -e 0 ${/** @type {{ median_ms: number }} */ (adm['node -e 0']).median_ms}, agentctl --version ${/** @type {{ median_ms: number }} */ (adm['agentctl --version']).median_ms}, spawn -d ${a}${Object.entries(
      adm,
    )
      .filter(([k]) => !['agentctl', 'node -e 0', 'agentctl --version'].includes(k))
      .map(([k, v]) => `, ${k} ${v.median_ms}`)
      .join('')}`,
  );
  const h = mk.agentctl.handoff_ms;
  console.log(
    `--wait detail: first admission ${mk.agentctl.first_admission_ms} ms after the 30 were launched; slot hand-off median ${h?.median} ms, max ${h?.max} ms; most registered at once ${mk.agentctl.max_registered_at_once}`,
  );
  console.log(
    `overshoot detail: ${ov.ran} fixtures logged a start, ${ov.unfinished_in_log} without an end; most registered (admitted..exited) at once ${ov.max_registered_at_once}; events ${JSON.stringify(ov.events)}`,
  );
  // the bench runs whatever dist/ holds; a rebuild part-way through mixes two builds
  if (newest(join(root, 'dist')) !== distBuilt)
    console.error(`warning: dist/ was rebuilt during this run (built ${versions.dist_built}, now ${new Date(newest(join(root, 'dist'))).toISOString()}); the figures mix two builds`);
  if (ov.other_exit_examples.length) console.log(`\nexit codes other than 0/75: ${JSON.stringify(ov.other_exit_examples, null, 1)}`);
  if (mk.agentctl.not_zero.length) console.log(`\n--wait runs that did not exit 0: ${JSON.stringify(mk.agentctl.not_zero.slice(0, 5), null, 1)}`);

  mkdirSync(join(root, 'bench', 'results'), { recursive: true });
  const out = join(root, 'bench', 'results', 'spawn.json');
  writeFileSync(
    out,
    `${JSON.stringify({ when: new Date().toISOString(), node: process.version, cpus: cpus().length, loadavg_start: loadavg(), versions, runs: RUNS, warmup: WARMUP, rows, admission: adm, overshoot: ov, wait_makespan: mk, supervision_rss: rss }, null, 2)}\n`,
  );
  console.log(`\nwritten to ${out}`);
} finally {
  cleanup();
}
