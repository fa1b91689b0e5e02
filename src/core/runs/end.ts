/**
 * Ending a run: on purpose (endRun: leave a stop marker, end its tree, record it), and how any
 * end is recorded, classified and charged to its name's health (finishRun). The stop marker
 * makes a deliberate end recorded as a stop or a timeout, not as a failure.
 */
import { removeFile } from '../fsutil.js';
import type { LoadedConfig } from '../config/types.js';
import { StateError } from '../errors.js';
import { isSameProcess, type ProcessIdentity, selfIdentity } from '../identity.js';
import { type Ended, endTree } from '../kill.js';
import { readOwn } from '../safefs.js';
import { ringAfterCommit } from '../bell.js';
import { afterRun, classifyExit, type FailureType, type NameHealth } from '../policy.js';
import type { State } from '../state.js';
import { childFile, exitFile, pidFile, type PidFileEntry, timeoutMarker } from './files.js';
import { getHealth, openHostBreakerIfLooping, setHealth } from './health.js';
import { getRun, type RegistryDeps, registryFor, runIdentity, type RunRow, type RunState } from './registry.js';
import { lastUsage, limitFacts } from './usage.js';

/** Exit status from a shell `wait`: above 128 is 128 + the signal number. */
export function decodeShellStatus(rc: number): { exitCode: number | null; signal: string | null } {
  if (rc > 128 && rc < 128 + 65) return { exitCode: null, signal: signalName(rc - 128) };
  return { exitCode: rc, signal: null };
}

const SIGNALS: Record<number, string> = {
  1: 'SIGHUP',
  2: 'SIGINT',
  3: 'SIGQUIT',
  4: 'SIGILL',
  6: 'SIGABRT',
  7: 'SIGBUS',
  8: 'SIGFPE',
  9: 'SIGKILL',
  10: 'SIGUSR1',
  11: 'SIGSEGV',
  12: 'SIGUSR2',
  13: 'SIGPIPE',
  14: 'SIGALRM',
  15: 'SIGTERM',
  24: 'SIGXCPU',
  25: 'SIGXFSZ',
};
export const signalName = (n: number) => SIGNALS[n] ?? `SIG${n}`;

/** The number of a signal as signalName writes it (`SIGKILL` 9, `SIG34` 34); undefined for anything else. */
export function signalNumber(name: string): number | undefined {
  const known = Object.entries(SIGNALS).find(([, s]) => s === name);
  if (known) return Number(known[0]);
  const m = /^SIG([1-9][0-9]?)$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

export interface EndFacts {
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly endedAt: number;
  readonly timedOut?: boolean;
  /** the kernel says its OOM killer ended it */
  readonly oom?: boolean;
  /** CPU time of the run's tree (runs/usage.ts), when its reaper read it */
  readonly cpuMs?: number | null;
  /** a peak RSS read by whoever recorded the end; the row's own, when larger, stays */
  readonly peakRssBytes?: number | null;
  readonly stoppedByUs?: boolean;
  /** the exit status is unknown: the process and its supervisor are both gone */
  readonly lost?: boolean;
  readonly why: string;
}

/** kv key where stop/reap leave why they are ending a run, for whoever records its exit. */
export const stopMarker = (runId: string) => `stopping:${runId}`;

/**
 * Why a stopper is ending a run, and who it is. The marker speaks for the stopper only while
 * the stopper lives, and for the run's end within the stopper's grace (plus the KILL and its
 * verify): a stop killed during its grace leaves a marker that a later, real failure of the
 * run must not be recorded under.
 */
export interface StopMarker {
  readonly timedOut: boolean;
  readonly why: string;
  readonly by?: ProcessIdentity;
  readonly at?: number;
  readonly graceMs?: number;
}

/** Slack after a stopper's grace for its KILL and the verify that follows. */
const MARKER_SLACK_MS = 5_000;

/** Does a stop marker still speak for a run that ended at `endedAt`? */
export function markerHolds(m: StopMarker, endedAt: number, lookup: RegistryDeps['lookup']): boolean {
  if (!m.by || m.at === undefined) return false; // a marker of unknown origin speaks for nobody
  if (isSameProcess(m.by, lookup)) return true;
  return endedAt <= m.at + (m.graceMs ?? 0) + MARKER_SLACK_MS;
}

/**
 * Close a run: record how it ended, classify the failure, update the name's backoff and
 * breaker, park it in the dead-letter queue when the breaker opens, free its PID file.
 */
export function finishRun(
  state: State,
  run: RunRow,
  facts: EndFacts,
  deps: RegistryDeps,
): { failure: FailureType | null; health: NameHealth; usage: { cpu_ms: number | null; peak_rss_bytes: number | null } } {
  const stored = state.getKv<StopMarker>(stopMarker(run.id))?.value;
  const marker = stored && markerHolds(stored, facts.endedAt, deps.lookup) ? stored : undefined;
  const f: EndFacts = marker && !facts.lost ? { ...facts, timedOut: marker.timedOut, stoppedByUs: !marker.timedOut, why: marker.why } : facts;
  if (stored) state.db.prepare('DELETE FROM kv WHERE key = ?').run(stopMarker(run.id));
  const runtimeMs = Math.max(0, f.endedAt - run.started_at);
  // a run that never got a process is the spawner's failure, not the worker's
  const failure = f.lost
    ? run.pid !== null && runtimeMs < deps.minUptimeMs
      ? 'startup_error'
      : null
    : classifyExit(
        { exitCode: f.exitCode, signal: f.signal, runtimeMs, timedOut: Boolean(f.timedOut), oom: Boolean(f.oom), stoppedByUs: Boolean(f.stoppedByUs), ...limitFacts(state, run, f) },
        deps.minUptimeMs,
      );
  const runState: RunState = f.stoppedByUs ? 'stopped' : f.lost ? 'lost' : failure ? 'failed' : 'exited';
  const usage = recordEnd(state, run, { state: runState, exit_code: f.exitCode, signal: f.signal, failure, ended_at: f.endedAt, cpu_ms: f.cpuMs ?? null, peak: f.peakRssBytes ?? null });

  const before = getHealth(state, run.name);
  const startsLastHour = (state.db.prepare('SELECT COUNT(*) AS n FROM runs WHERE name = ? AND started_at > ?').get(run.name, f.endedAt - 3_600_000) as { n: number }).n;
  const health = f.stoppedByUs || (f.lost && failure === null) ? before : afterRun(before, { failure, runtimeMs, endedAt: f.endedAt, startsLastHour }, deps.policy);
  setHealth(state, run.name, health, deps.now);

  // a run lost, or killed from outside (KILL, TERM, INT, HUP), within min_uptime is a startup
  // error for its name but says nothing of a loop: only runs that failed on their own count;
  // nor does a batch job's (spawn --each): its input bounds it, and --halt-on-failure stops it
  if (failure === 'startup_error' && !f.lost && run.mode !== 'batch') openHostBreakerIfLooping(state, f.endedAt, deps);
  removePidFileIfOurs(state, run);
  state.db.prepare("DELETE FROM port_leases WHERE owner_kind = 'run' AND owner = ?").run(run.id);
  // its slot and ports are free once this commits: wake the waiters that could take them
  ringAfterCommit(state);
  try {
    removeFile(exitFile(state, run.id));
    removeFile(timeoutMarker(state, run.id));
    removeFile(childFile(state, run.id));
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
      data: { run_id: run.id, pid: run.pid, exit_code: f.exitCode, signal: f.signal, failure, runtime_ms: runtimeMs, ...usage },
    },
    deps.now,
  );
  if (before.mode === 'open' && health.mode === 'closed' && health.consecutiveFailures === 0) {
    state.event({ command: deps.command, kind: 'breaker.closed', subject: run.name, reason: `trial run ${run.id} succeeded: breaker closed` }, deps.now);
  }
  // opened now, or opened again by a failed trial
  if (health.mode === 'open' && (before.mode !== 'open' || health.openedAt !== before.openedAt)) {
    state.event(
      { command: deps.command, kind: 'breaker.open', subject: run.name, reason: `${health.reason}; paused until ${new Date(health.notBefore).toISOString()}`, data: { until: health.notBefore } },
      deps.now,
    );
    addToDlq(state, run, { failure, error: health.reason ?? 'breaker opened', restarts: health.consecutiveFailures, exitCode: f.exitCode, signal: f.signal }, deps.now, deps.command);
  }
  return { failure, health, usage };
}

/**
 * Park a run in the dead-letter queue (the breaker opened, or its restart policy gave up),
 * with what `dlq retry` needs to start it again: its restart policy included; and say so
 * (`dlq.add`, an event hooks can take).
 */
export function addToDlq(
  state: State,
  run: RunRow,
  e: { failure: FailureType | null; error: string; restarts: number; exitCode: number | null; signal: string | null },
  now: number,
  command: string,
): void {
  const restart = run.restart_policy ? { restart: { policy: run.restart_policy, retries: run.restart_retries ?? null } } : {};
  // its terms too, so that `dlq retry` starts it under its limits, timeout and caps, not bare
  const parsed = (text: string | null): unknown => {
    try {
      return text === null ? null : (JSON.parse(text) as unknown);
    } catch {
      return null;
    }
  };
  const terms = { limits: parsed(run.limits), timeout_ms: run.timeout_ms, spec: parsed(run.restart_spec ?? null) };
  state.db
    .prepare('INSERT INTO dlq (name, run_id, failure, error, restarts, context, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
    .run(
      run.name,
      run.id,
      e.failure,
      e.error,
      e.restarts,
      JSON.stringify({ command: JSON.parse(run.command) as unknown, cwd: run.cwd, group: run.grp, priority: run.priority, exit_code: e.exitCode, signal: e.signal, ...terms, ...restart }),
      now,
    );
  state.event({ command, kind: 'dlq.add', subject: run.name, reason: `${run.id} added to the dead-letter queue: ${e.error}`, data: { run_id: run.id, failure: e.failure, restarts: e.restarts } }, now);
  // the dead-letter queue keeps the last 100 entries (incident 4)
  state.db.prepare('DELETE FROM dlq WHERE id <= (SELECT MAX(id) FROM dlq) - 100').run();
}

/**
 * Write how a run ended and what it used (the larger of the row's peak RSS and `peak`), unless
 * someone recorded it first; returns what the row now says it used.
 */
function recordEnd(
  state: State,
  run: RunRow,
  v: { state: RunState; exit_code: number | null; signal: string | null; failure: FailureType | null; ended_at: number; cpu_ms: number | null; peak: number | null },
): { cpu_ms: number | null; peak_rss_bytes: number | null } {
  const row = state.db
    .prepare(
      `UPDATE runs SET state = @state, exit_code = @exit_code, signal = @signal, failure = @failure, ended_at = @ended_at, cpu_ms = @cpu_ms,
         peak_rss_bytes = CASE WHEN @peak IS NULL OR (peak_rss_bytes IS NOT NULL AND peak_rss_bytes >= @peak) THEN peak_rss_bytes ELSE @peak END
       WHERE id = @id AND ended_at IS NULL RETURNING cpu_ms, peak_rss_bytes`,
    )
    .get({ ...v, id: run.id }) as { cpu_ms: number | null; peak_rss_bytes: number | null } | undefined;
  return row ?? { cpu_ms: v.cpu_ms, peak_rss_bytes: v.peak };
}

function removePidFileIfOurs(state: State, run: RunRow): void {
  const path = pidFile(state, run.name);
  try {
    const text = readOwn(path)?.toString('utf8') ?? '';
    const meta = JSON.parse(text.split('\n')[1] ?? '{}') as { run_id?: string };
    if (meta.run_id === run.id) removeFile(path);
  } catch {
    /* no PID file, or not ours */
  }
}

/** The run an ended tree was, and what could not be recorded: added to endTree's report. */
const withRun = (r: Ended, run?: { id: string; name: string }, recordError?: string): Ended => ({
  ...(run ? { run_id: run.id, name: run.name } : {}),
  ...r,
  ...(recordError !== undefined ? { record_error: recordError } : {}),
});

/** Run a state write that may fail without stopping the signals: returns the failure's message. */
function tryRecord(state: State, fn: () => void): string | undefined {
  try {
    state.write(fn);
    return undefined;
  } catch (err) {
    if (err instanceof StateError) return err.message;
    throw err;
  }
}

/**
 * End a registered run's tree and record it: `how` says whether it counts against the worker
 * (timeout: a hung or overdue run) or was a deliberate stop (not a failure).
 */
export async function endRun(state: State, config: LoadedConfig, run: RunRow, graceMs: number, how: { timedOut: boolean; why: string; command: string }): Promise<Ended | undefined> {
  const id = runIdentity(run);
  if (!id) return undefined;
  // say why, and who says it, before the first signal: whoever records the exit (a waiting
  // foreground spawn, a detached supervisor's file, this call) records it as a stop or a
  // timeout, not a crash; the marker lapses with its stopper (see markerHolds)
  const marker: StopMarker = { timedOut: how.timedOut, why: how.why, ...(selfIdentity() ? { by: selfIdentity()! } : {}), at: Date.now(), graceMs };
  // a state that cannot be written (a full disk) must not keep a stop from stopping
  const markError = tryRecord(state, () => state.setKv(stopMarker(run.id), marker));
  // the last reading of what it used: whoever records its end after the signals cannot read it
  const used = lastUsage(id);
  const r = await endTree(id, { runId: run.id, graceMs });
  const finishError = tryRecord(state, () => {
    const cur = getRun(state, run.id);
    if (!cur || cur.ended_at !== null) return; // its supervisor's record won the race
    finishRun(
      state,
      cur,
      { exitCode: null, signal: r.graceful ? 'SIGTERM' : 'SIGKILL', endedAt: Date.now(), timedOut: how.timedOut, stoppedByUs: !how.timedOut, why: how.why, ...used },
      registryFor(config, Date.now(), how.command),
    );
  });
  return withRun(r, run, finishError ?? markError);
}

/**
 * End a run known only from its PID file, when the state cannot be read (a full disk): the
 * identity there is checked before every signal like any other, and nothing is recorded.
 */
export async function endFromPidFile(entry: PidFileEntry, graceMs: number, recordError: string): Promise<Ended> {
  const id = { pid: entry.pid, startTime: entry.start_time, bootId: entry.boot_id };
  return withRun(await endTree(id, { runId: entry.run_id, graceMs }), { id: entry.run_id, name: entry.name }, recordError);
}
