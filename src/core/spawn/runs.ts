/**
 * The run registry: every spawn is a row with its process identity. `reconcile` closes runs
 * whose process is gone (reading the exit a detached supervisor left behind), never trusting
 * a PID whose start time no longer matches. Call it inside a write transaction.
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensurePrivateDir, writeFileAtomic } from '../fsutil.js';
import { sameIdentity, type ProcessIdentity } from '../identity.js';
import type { State } from '../state.js';
import { afterHealthyUptime, afterRun, classifyExit, HEALTHY, modeAt, type FailureType, type NameHealth, type PolicySettings } from './policy.js';
import { ringAfterCommit } from './bell.js';

export type RunState = 'starting' | 'running' | 'exited' | 'failed' | 'lost' | 'stopped';

export interface RunRow {
  readonly id: string;
  readonly name: string;
  readonly grp: string;
  readonly priority: number;
  readonly mode: 'foreground' | 'detached';
  readonly state: RunState;
  readonly pid: number | null;
  readonly start_time: string | null;
  readonly boot_id: string | null;
  readonly pgid: number | null;
  readonly sup_pid: number | null;
  readonly sup_start_time: string | null;
  readonly command: string;
  readonly cwd: string;
  readonly ports: string | null;
  readonly config_hash: string | null;
  readonly limits: string | null;
  readonly limit_mechanism: string | null;
  readonly timeout_ms: number | null;
  readonly log_path: string | null;
  readonly exit_code: number | null;
  readonly signal: string | null;
  readonly failure: FailureType | null;
  readonly started_at: number;
  readonly ended_at: number | null;
}

/** A reservation older than this with no PID belongs to a spawner that died mid-start. */
export const STARTING_TIMEOUT_MS = 30_000;

export interface RegistryDeps {
  readonly now: number;
  readonly lookup: (pid: number) => ProcessIdentity | undefined;
  readonly minUptimeMs: number;
  readonly policy: PolicySettings;
  readonly command: string;
  /** cap on a detached run's log; the older half moves to <log>.prev. @default none */
  readonly logMaxBytes?: number;
}

/**
 * Keep a log under `max` bytes while its writer runs: its newest half is copied to <log>.prev
 * and the log is truncated. The child writes with O_APPEND, so its next write lands at the new end.
 */
export function capLog(path: string, max: number): boolean {
  try {
    const size = statSync(path).size;
    if (size <= max) return false;
    const keep = Math.floor(max / 2);
    const fd = openSync(path, 'r');
    const buf = Buffer.alloc(keep);
    try {
      readSync(fd, buf, 0, keep, size - keep);
    } finally {
      closeSync(fd);
    }
    writeFileSync(`${path}.prev`, buf, { mode: 0o600 });
    truncateSync(path, 0);
    return true;
  } catch {
    return false;
  }
}

export const runDir = (state: State) => join(state.paths.dir, 'runs');
export const exitFile = (state: State, id: string) => join(runDir(state), `${id}.exit`);
export const timeoutMarker = (state: State, id: string) => join(runDir(state), `${id}.timeout`);
export const pidFile = (state: State, name: string) => join(state.paths.pids, `${name}.pid`);

let counter = 0;
/** Run ids sort by start time: base-36 milliseconds, then pid and a counter for uniqueness. */
export function newRunId(now: number, pid = process.pid): string {
  counter = (counter + 1) % 1296;
  return `r${now.toString(36).padStart(9, '0')}${(pid % 46656).toString(36).padStart(3, '0')}${counter.toString(36).padStart(2, '0')}`;
}

export function liveRuns(state: State): RunRow[] {
  return state.db.prepare('SELECT * FROM runs WHERE ended_at IS NULL ORDER BY started_at').all() as RunRow[];
}

export function getRun(state: State, id: string): RunRow | undefined {
  return state.db.prepare('SELECT * FROM runs WHERE id = ?').get(id) as RunRow | undefined;
}

export function getHealth(state: State, name: string): NameHealth {
  const row = state.db.prepare('SELECT value FROM health WHERE name = ?').get(name) as { value: string } | undefined;
  if (!row) return HEALTHY;
  try {
    return JSON.parse(row.value) as NameHealth;
  } catch {
    return HEALTHY;
  }
}

export function setHealth(state: State, name: string, h: NameHealth, now: number): void {
  if (h === HEALTHY || (h.mode === 'closed' && h.consecutiveFailures === 0)) {
    state.db.prepare('DELETE FROM health WHERE name = ?').run(name);
    return;
  }
  state.db
    .prepare('INSERT INTO health (name, value, updated_at) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at')
    .run(name, JSON.stringify(h), now);
}

/** The identity a run row holds, when it has one. */
export function runIdentity(r: RunRow): ProcessIdentity | undefined {
  return r.pid !== null && r.start_time !== null && r.boot_id !== null ? { pid: r.pid, startTime: r.start_time, bootId: r.boot_id } : undefined;
}

/** Is the run's own process still the one we started? */
export function runAlive(r: RunRow, lookup: RegistryDeps['lookup']): boolean {
  const id = runIdentity(r);
  if (!id) return false;
  const now = lookup(id.pid);
  return now !== undefined && sameIdentity(id, now);
}

function supervisorAlive(r: RunRow, lookup: RegistryDeps['lookup']): boolean {
  if (r.sup_pid === null || r.sup_start_time === null) return false;
  const now = lookup(r.sup_pid);
  return now !== undefined && now.startTime === r.sup_start_time;
}

/** Exit status from a shell `wait`: above 128 is 128 + the signal number. */
export function decodeShellStatus(rc: number): { exitCode: number | null; signal: string | null } {
  if (rc > 128 && rc < 128 + 65) return { exitCode: null, signal: signalName(rc - 128) };
  return { exitCode: rc, signal: null };
}

const SIGNALS: Record<number, string> = { 1: 'SIGHUP', 2: 'SIGINT', 3: 'SIGQUIT', 4: 'SIGILL', 6: 'SIGABRT', 7: 'SIGBUS', 8: 'SIGFPE', 9: 'SIGKILL', 10: 'SIGUSR1', 11: 'SIGSEGV', 12: 'SIGUSR2', 13: 'SIGPIPE', 14: 'SIGALRM', 15: 'SIGTERM', 24: 'SIGXCPU', 25: 'SIGXFSZ' };
export const signalName = (n: number) => SIGNALS[n] ?? `SIG${n}`;

export interface EndFacts {
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly endedAt: number;
  readonly timedOut?: boolean;
  readonly oom?: boolean;
  readonly stoppedByUs?: boolean;
  /** the exit status is unknown: the process and its supervisor are both gone */
  readonly lost?: boolean;
  readonly why: string;
}

/**
 * Close a run: record how it ended, classify the failure, update the name's backoff and
 * breaker, park it in the dead-letter queue when the breaker opens, free its PID file.
 */
/** kv key where stop/reap leave why they are ending a run, for whoever records its exit. */
export const stopMarker = (runId: string) => `stopping:${runId}`;

export function finishRun(state: State, run: RunRow, facts: EndFacts, deps: RegistryDeps): { failure: FailureType | null; health: NameHealth } {
  const marker = state.getKv<{ timedOut: boolean; why: string }>(stopMarker(run.id))?.value;
  const f: EndFacts = marker && !facts.lost ? { ...facts, timedOut: marker.timedOut, stoppedByUs: !marker.timedOut, why: marker.why } : facts;
  if (marker) state.db.prepare('DELETE FROM kv WHERE key = ?').run(stopMarker(run.id));
  const runtimeMs = Math.max(0, f.endedAt - run.started_at);
  // a run that never got a process is the spawner's failure, not the worker's
  const failure = f.lost
    ? run.pid !== null && runtimeMs < deps.minUptimeMs
      ? 'startup_error'
      : null
    : classifyExit({ exitCode: f.exitCode, signal: f.signal, runtimeMs, timedOut: Boolean(f.timedOut), oom: Boolean(f.oom), stoppedByUs: Boolean(f.stoppedByUs) }, deps.minUptimeMs);
  const runState: RunState = f.stoppedByUs ? 'stopped' : f.lost ? 'lost' : failure ? 'failed' : 'exited';
  state.db
    .prepare('UPDATE runs SET state = ?, exit_code = ?, signal = ?, failure = ?, ended_at = ? WHERE id = ? AND ended_at IS NULL')
    .run(runState, f.exitCode, f.signal, failure, f.endedAt, run.id);

  const before = getHealth(state, run.name);
  const startsLastHour = (state.db.prepare('SELECT COUNT(*) AS n FROM runs WHERE name = ? AND started_at > ?').get(run.name, f.endedAt - 3_600_000) as { n: number }).n;
  const health = f.stoppedByUs || (f.lost && failure === null) ? before : afterRun(before, { failure, runtimeMs, endedAt: f.endedAt, startsLastHour }, deps.policy);
  setHealth(state, run.name, health, deps.now);

  removePidFileIfOurs(state, run);
  state.db.prepare("DELETE FROM port_leases WHERE owner_kind = 'run' AND owner = ?").run(run.id);
  // its slot and ports are free once this commits: wake the waiters that could take them
  ringAfterCommit(state);
  try {
    rmSync(exitFile(state, run.id), { force: true });
    rmSync(timeoutMarker(state, run.id), { force: true });
  } catch {
    /* leftovers are harmless */
  }

  const outcome = f.lost ? 'exit status unknown' : f.signal ? `ended by ${f.signal}` : `exit ${f.exitCode}`;
  state.event(
    {
      command: deps.command,
      kind: failure ? 'run.failed' : f.stoppedByUs ? 'run.stopped' : f.lost ? 'run.lost' : 'run.exited',
      subject: run.name,
      reason: `${run.id} ${outcome} after ${Math.round(runtimeMs / 100) / 10}s${failure ? ` (${failure})` : ''}: ${f.why}`,
      data: { run_id: run.id, pid: run.pid, exit_code: f.exitCode, signal: f.signal, failure, runtime_ms: runtimeMs },
    },
    deps.now,
  );
  if (before.mode === 'open' && health.mode === 'closed' && health.consecutiveFailures === 0) {
    state.event({ command: deps.command, kind: 'breaker.closed', subject: run.name, reason: `trial run ${run.id} succeeded: breaker closed` }, deps.now);
  }
  // opened now, or opened again by a failed trial
  if (health.mode === 'open' && (before.mode !== 'open' || health.openedAt !== before.openedAt)) {
    state.event({ command: deps.command, kind: 'breaker.open', subject: run.name, reason: `${health.reason}; paused until ${new Date(health.notBefore).toISOString()}`, data: { until: health.notBefore } }, deps.now);
    const restarts = health.consecutiveFailures;
    state.db
      .prepare('INSERT INTO dlq (name, run_id, failure, error, restarts, context, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(run.name, run.id, failure, health.reason ?? 'breaker opened', restarts, JSON.stringify({ command: JSON.parse(run.command), cwd: run.cwd, group: run.grp, priority: run.priority, exit_code: f.exitCode, signal: f.signal }), deps.now);
    // the dead-letter queue keeps the last 100 entries (incident 4)
    state.db.prepare('DELETE FROM dlq WHERE id <= (SELECT MAX(id) FROM dlq) - 100').run();
  }
  return { failure, health };
}

function removePidFileIfOurs(state: State, run: RunRow): void {
  const path = pidFile(state, run.name);
  try {
    const text = readFileSync(path, 'utf8');
    const meta = JSON.parse(text.split('\n')[1] ?? '{}') as { run_id?: string };
    if (meta.run_id === run.id) rmSync(path, { force: true });
  } catch {
    /* no PID file, or not ours */
  }
}

/** Write the PID file for a run: the PID on line 1 (for `kill $(head -1 ...)`), the identity as JSON on line 2. */
export function writePidFile(state: State, run: { id: string; name: string }, id: ProcessIdentity): void {
  ensurePrivateDir(state.paths.pids);
  writeFileAtomic(pidFile(state, run.name), `${id.pid}\n${JSON.stringify({ run_id: run.id, pid: id.pid, start_time: id.startTime, boot_id: id.bootId })}\n`);
}

/**
 * Close every registered run whose process has ended or whose PID now names another process.
 * Also forgives earlier failures of runs that have stayed up long enough.
 * Returns the runs it closed.
 */
export function reconcile(state: State, deps: RegistryDeps): Array<{ run: RunRow; why: string }> {
  const closed: Array<{ run: RunRow; why: string }> = [];
  for (const run of liveRuns(state)) {
    if (run.state === 'starting' && run.pid === null) {
      if (deps.now - run.started_at > STARTING_TIMEOUT_MS || !supervisorAlive(run, deps.lookup)) {
        finishRun(state, run, { exitCode: null, signal: null, endedAt: deps.now, lost: true, why: 'the spawner died before the process started' }, deps);
        closed.push({ run, why: 'never started' });
      }
      continue;
    }
    const exitPath = exitFile(state, run.id);
    if (run.mode === 'detached' && existsSync(exitPath)) {
      let rc: number | undefined;
      let endedAt = deps.now;
      try {
        rc = Number.parseInt(readFileSync(exitPath, 'utf8').trim(), 10);
        endedAt = Math.round(statSync(exitPath).mtimeMs);
      } catch {
        rc = undefined;
      }
      if (rc !== undefined && Number.isInteger(rc)) {
        const timedOut = existsSync(timeoutMarker(state, run.id));
        const st = decodeShellStatus(rc);
        finishRun(state, run, { ...st, endedAt, timedOut, why: timedOut ? 'ran past its timeout' : 'its supervisor recorded the exit' }, deps);
        closed.push({ run, why: 'exited' });
        continue;
      }
    }
    if (runAlive(run, deps.lookup)) {
      if (run.log_path && deps.logMaxBytes) capLog(run.log_path, deps.logMaxBytes);
      const h = getHealth(state, run.name);
      const up = deps.now - run.started_at;
      const mode = modeAt(h, deps.now);
      if ((mode === 'half_open' && up >= deps.minUptimeMs) || (h.consecutiveFailures > 0 && mode === 'closed' && up >= deps.policy.resetAfterMs)) {
        setHealth(state, run.name, afterHealthyUptime(h), deps.now);
        state.event({ command: deps.command, kind: 'breaker.closed', subject: run.name, reason: `${run.id} has been up ${Math.round(up / 1000)}s: earlier failures forgiven` }, deps.now);
      }
      continue;
    }
    // The process is gone or its PID was reused. A detached supervisor still alive is about to
    // write the exit status: leave the run for the next reconcile.
    // The same holds for a foreground run: its agentctl is waiting on the child and records it.
    if (supervisorAlive(run, deps.lookup)) continue;
    const nowId = run.pid !== null ? deps.lookup(run.pid) : undefined;
    const reused = nowId !== undefined && nowId.startTime !== run.start_time;
    finishRun(state, run, { exitCode: null, signal: null, endedAt: deps.now, lost: true, why: reused ? `PID ${run.pid} now belongs to another process (never signalled)` : 'process and supervisor are gone' }, deps);
    closed.push({ run, why: reused ? 'pid reused' : 'gone' });
  }
  return closed;
}
