/**
 * The run registry: every spawn is a row with its process identity. `reconcile` closes runs
 * whose process is gone (reading the exit a detached supervisor left behind), never trusting
 * a PID whose start time no longer matches. Call it inside a write transaction.
 */
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { StateError } from '../errors.js';
import { ensurePrivateDir, writeFileAtomic } from '../fsutil.js';
import { bootId, isSameProcess, readProcStat, type ProcessIdentity } from '../identity.js';
import { findByRunId } from '../kill.js';
import { NAME_RE } from '../names.js';
import { processUid, readProcFile, supervisorRunId } from '../proc.js';
import { lexists, readOwn, statOwn, truncateOwn } from '../safefs.js';
import type { State } from '../state.js';
import { afterHealthyUptime, afterRun, classifyExit, HEALTHY, hostBreakerAfter, modeAt, type FailureType, type NameHealth, type PolicySettings, type StartupFailure } from './policy.js';
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
 * Never through a link: the log must be a plain file of ours, and .prev is written new and
 * renamed into place.
 */
export function capLog(path: string, max: number): boolean {
  try {
    const st = statOwn(path);
    if (!st || st.size <= max) return false;
    const keep = Math.floor(max / 2);
    const buf = readOwn(path, keep, st.size - keep);
    if (!buf) return false;
    writeFileAtomic(`${path}.prev`, buf, 0o600);
    return truncateOwn(path);
  } catch {
    return false;
  }
}

/** Run ids as newRunId makes them; anything else read back from the state is not ours. */
export const RUN_ID_RE = /^r[0-9a-z]{6,20}$/;

/**
 * A run id or name read back from the state becomes part of a file name: check it like user
 * input, so a row someone else wrote (`../../x`) never names a file outside the state folder.
 */
export function safeRunId(id: string): string {
  if (!RUN_ID_RE.test(id)) throw new StateError(`state holds a run id that agentctl never makes (${JSON.stringify(id.slice(0, 40))}); the state file is damaged or was written by someone else`, 'runs', 1, 'state_corrupt');
  return id;
}

export function safeName(name: string): string {
  if (!NAME_RE.test(name) || name.includes('..')) throw new StateError(`state holds a run name that agentctl never accepts (${JSON.stringify(name.slice(0, 40))}); the state file is damaged or was written by someone else`, 'runs', 1, 'state_corrupt');
  return name;
}

export const runDir = (state: State) => join(state.paths.dir, 'runs');
export const exitFile = (state: State, id: string) => join(runDir(state), `${safeRunId(id)}.exit`);
export const timeoutMarker = (state: State, id: string) => join(runDir(state), `${safeRunId(id)}.timeout`);
/** Where a detached run's supervisor writes the child's PID before anything else. */
export const childFile = (state: State, id: string) => join(runDir(state), `${safeRunId(id)}.child`);
export const pidFile = (state: State, name: string) => join(state.paths.pids, `${safeName(name)}.pid`);
/** A detached run's log: always derived from its name and id, never taken from a stored path. */
export const logFile = (state: State, run: { id: string; name: string }) => join(state.paths.logs, `${safeName(run.name)}.${safeRunId(run.id)}.log`);

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
  return id !== undefined && isSameProcess(id, lookup);
}

/** Is the run's supervisor (a detached run's shell, a foreground run's agentctl, or the spawner while it starts) still alive? */
export function supervisorAlive(r: RunRow, lookup: RegistryDeps['lookup']): boolean {
  if (r.sup_pid === null || r.sup_start_time === null) return false;
  return isSameProcess({ pid: r.sup_pid, startTime: r.sup_start_time, bootId: r.boot_id ?? bootId() }, lookup);
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
export function finishRun(state: State, run: RunRow, facts: EndFacts, deps: RegistryDeps): { failure: FailureType | null; health: NameHealth } {
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
    : classifyExit({ exitCode: f.exitCode, signal: f.signal, runtimeMs, timedOut: Boolean(f.timedOut), oom: Boolean(f.oom), stoppedByUs: Boolean(f.stoppedByUs) }, deps.minUptimeMs);
  const runState: RunState = f.stoppedByUs ? 'stopped' : f.lost ? 'lost' : failure ? 'failed' : 'exited';
  state.db
    .prepare('UPDATE runs SET state = ?, exit_code = ?, signal = ?, failure = ?, ended_at = ? WHERE id = ? AND ended_at IS NULL')
    .run(runState, f.exitCode, f.signal, failure, f.endedAt, run.id);

  const before = getHealth(state, run.name);
  const startsLastHour = (state.db.prepare('SELECT COUNT(*) AS n FROM runs WHERE name = ? AND started_at > ?').get(run.name, f.endedAt - 3_600_000) as { n: number }).n;
  const health = f.stoppedByUs || (f.lost && failure === null) ? before : afterRun(before, { failure, runtimeMs, endedAt: f.endedAt, startsLastHour }, deps.policy);
  setHealth(state, run.name, health, deps.now);

  // a run lost, or killed from outside (KILL, TERM, INT, HUP), within min_uptime is a startup
  // error for its name but says nothing of a loop: only runs that failed on their own count
  if (failure === 'startup_error' && !f.lost) openHostBreakerIfLooping(state, f.endedAt, deps);
  removePidFileIfOurs(state, run);
  state.db.prepare("DELETE FROM port_leases WHERE owner_kind = 'run' AND owner = ?").run(run.id);
  // its slot and ports are free once this commits: wake the waiters that could take them
  ringAfterCommit(state);
  try {
    rmSync(exitFile(state, run.id), { force: true });
    rmSync(timeoutMarker(state, run.id), { force: true });
    rmSync(childFile(state, run.id), { force: true });
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
    const text = readOwn(path)?.toString('utf8') ?? '';
    const meta = JSON.parse(text.split('\n')[1] ?? '{}') as { run_id?: string };
    if (meta.run_id === run.id) rmSync(path, { force: true });
  } catch {
    /* no PID file, or not ours */
  }
}

/** kv key of the host-wide startup-failure breaker (a HostBreaker while open or after). */
export const HOST_BREAKER_KEY = 'breaker.host';
/** kv key of the last `breaker reset --host`: failures before it no longer count. */
export const HOST_BREAKER_RESET_KEY = 'breaker.host.reset_at';

/** After a startup error: open the host breaker when startup errors across all names say a loop runs. */
function openHostBreakerIfLooping(state: State, now: number, deps: RegistryDeps): void {
  const p = deps.policy;
  if (p.hostBreakerFailures <= 0) return;
  const resetAt = state.getKv<number>(HOST_BREAKER_RESET_KEY)?.value ?? 0;
  const since = Math.max(resetAt, now - p.hostBreakerWindowMs);
  // a startup error ends within min_uptime of its start: the started_at index finds them
  const rows = state.db
    .prepare(
      `SELECT name, id AS run_id, ended_at AS at, exit_code, signal FROM runs WHERE started_at > ? AND failure = 'startup_error' AND state = 'failed' AND ended_at > ?
       AND (exit_code IS NOT NULL OR signal IN ('SIGSEGV', 'SIGABRT', 'SIGBUS', 'SIGILL', 'SIGFPE')) ORDER BY ended_at`,
    )
    .all(since - deps.minUptimeMs, since) as StartupFailure[];
  const opened = hostBreakerAfter(state.getKv<{ notBefore: number }>(HOST_BREAKER_KEY)?.value, rows, now, p);
  if (!opened) return;
  state.setKv(HOST_BREAKER_KEY, opened, now);
  state.event(
    { command: deps.command, kind: 'breaker.open', subject: 'host', reason: `${opened.reason}; every spawn on this host paused until ${new Date(opened.notBefore).toISOString()}; agentctl breaker reset --host after fixing the cause`, data: { until: opened.notBefore, failures: opened.failures } },
    deps.now,
  );
}

/** What a PID file's second line holds. */
export interface PidFileEntry {
  readonly run_id: string;
  readonly name: string;
  readonly group: string;
  readonly pid: number;
  readonly start_time: string;
  readonly boot_id: string;
}

/**
 * Write the PID file for a run: the PID on line 1 (for `kill $(head -1 ...)`), the identity as
 * JSON on line 2, with the name and group so a stop can still find the run when the state
 * cannot be read (a full disk).
 */
export function writePidFile(state: State, run: { id: string; name: string; grp?: string }, id: ProcessIdentity): void {
  ensurePrivateDir(state.paths.pids);
  const entry: PidFileEntry = { run_id: run.id, name: run.name, group: run.grp ?? 'default', pid: id.pid, start_time: id.startTime, boot_id: id.bootId };
  writeFileAtomic(pidFile(state, run.name), `${id.pid}\n${JSON.stringify(entry)}\n`, 0o600);
}

/** One PID file as read: its identity when line 2 holds one, and the full entry when it is valid. */
export interface PidFileRead {
  readonly path: string;
  readonly identity: ProcessIdentity | undefined;
  /** name, run id and group too, each as agentctl makes them, the name matching the file */
  readonly entry: PidFileEntry | undefined;
}

/**
 * Every `*.pid` file in the folder, read like user input: only plain files of ours (never
 * through a link), line 2 parsed as JSON. Files written before PID files held name and group
 * still give their identity.
 */
export function pidFiles(pidsDir: string): PidFileRead[] {
  let files: string[];
  try {
    files = readdirSync(pidsDir);
  } catch {
    return [];
  }
  return files
    .filter((f) => f.endsWith('.pid'))
    .map((f) => {
      const path = join(pidsDir, f);
      let e: Partial<PidFileEntry>;
      try {
        e = JSON.parse((readOwn(path)?.toString('utf8') ?? '').split('\n')[1] ?? '') as Partial<PidFileEntry>;
      } catch {
        return { path, identity: undefined, entry: undefined };
      }
      const identity = e && Number.isInteger(e.pid) && (e.pid as number) > 1 && typeof e.start_time === 'string' && typeof e.boot_id === 'string' ? { pid: e.pid!, startTime: e.start_time, bootId: e.boot_id } : undefined;
      const named = typeof e.name === 'string' && `${e.name}.pid` === f && NAME_RE.test(e.name) && typeof e.run_id === 'string' && RUN_ID_RE.test(e.run_id);
      const entry = identity && named ? { run_id: e.run_id!, name: e.name!, group: typeof e.group === 'string' && NAME_RE.test(e.group) ? e.group : 'default', pid: identity.pid, start_time: identity.startTime, boot_id: identity.bootId } : undefined;
      return { path, identity, entry };
    });
}

/** The valid entries of the PID files (see pidFiles): what `stop` can act on without the database. */
export function readPidFiles(pidsDir: string): PidFileEntry[] {
  return pidFiles(pidsDir).flatMap((f) => (f.entry ? [f.entry] : []));
}

/** What reconcile makes of a live run row right now (pure but for reading files and /proc). */
export type RunFate =
  | { readonly kind: 'alive' }
  /** not ours to close yet: its supervisor or spawner is about to record it */
  | { readonly kind: 'wait'; readonly why: string }
  | { readonly kind: 'exited'; readonly rc: number; readonly endedAt: number; readonly timedOut: boolean }
  /** its spawner died after starting it: take it into the registry */
  | { readonly kind: 'adopt'; readonly child: ProcessIdentity; readonly sup: ProcessIdentity | undefined }
  | { readonly kind: 'lost'; readonly why: string; readonly reused: boolean };

/** The exit status a detached run's supervisor left, when it left one (a plain file of ours, never a link). */
function readExit(state: State, run: RunRow): { rc: number; endedAt: number } | undefined {
  if (run.mode !== 'detached') return undefined;
  const path = exitFile(state, run.id);
  const st = statOwn(path);
  if (!st) return undefined;
  const rc = Number.parseInt(readOwn(path, 32)?.toString('latin1').trim() ?? '', 10);
  return Number.isInteger(rc) ? { rc, endedAt: Math.round(st.mtimeMs) } : undefined;
}

/** Does this live process carry the run's id in its environment (Linux; readable ones only)? */
function carriesRunId(pid: number, runId: string): boolean {
  return `\0${readProcFile(`/proc/${pid}/environ`) ?? ''}`.includes(`\0AGENTCTL_RUN_ID=${runId}\0`);
}

/**
 * The child of a run whose spawner died while starting it: the PID its supervisor wrote to
 * runs/<id>.child, or else a process found carrying the run id that leads its own group. It
 * counts only when its environment carries the run id; its supervisor only when the command
 * line says `agentctl-supervise -s <id>`. Either must be the invoking user's.
 */
function findChild(state: State, run: RunRow, lookup: RegistryDeps['lookup'], scan: boolean): { child: ProcessIdentity; sup: ProcessIdentity | undefined } | undefined {
  const named = Number.parseInt(readOwn(childFile(state, run.id), 32)?.toString('latin1').trim() ?? '', 10);
  const candidates = Number.isInteger(named) && named > 1 ? [named] : scan ? findByRunId(run.id) : [];
  for (const pid of candidates) {
    const st = readProcStat(pid);
    const child = lookup(pid);
    // another user can put our run id in an environment of theirs: only our own processes count
    if (!st || !child || st.pgid !== pid || processUid(pid) !== process.geteuid?.() || !carriesRunId(pid, run.id)) continue;
    const supArgv = (readProcFile(`/proc/${st.ppid}/cmdline`) ?? '').replace(/\0$/, '').split('\0');
    const sup = supervisorRunId(supArgv) === run.id ? lookup(st.ppid) : undefined;
    return { child, sup };
  }
  return undefined;
}

/**
 * The one reading of a live run that reconcile acts on and `--dry-run`s report, so a dry run
 * says what the real command will do.
 */
export function runFate(state: State, run: RunRow, deps: Pick<RegistryDeps, 'now' | 'lookup'>): RunFate {
  const exit = readExit(state, run);
  if (exit) return { kind: 'exited', ...exit, timedOut: statOwn(timeoutMarker(state, run.id)) !== undefined };
  if (run.state === 'starting' && run.pid === null) {
    const young = deps.now - run.started_at <= STARTING_TIMEOUT_MS;
    const starter = supervisorAlive(run, deps.lookup);
    const found = findChild(state, run, deps.lookup, !(young && starter));
    if (found) return { kind: 'adopt', ...found };
    if (young && starter) return { kind: 'wait', why: 'starting' };
    return { kind: 'lost', why: 'the spawner died before the process started', reused: false };
  }
  if (runAlive(run, deps.lookup)) return { kind: 'alive' };
  // The process is gone or its PID was reused. A detached supervisor still alive is about to
  // write the exit status: leave the run for the next reconcile. The same holds for a
  // foreground run: its agentctl is waiting on the child and records it.
  if (supervisorAlive(run, deps.lookup)) return { kind: 'wait', why: 'its supervisor is recording the exit' };
  // the supervisor may have written the exit and ended between the first look and now
  const late = readExit(state, run);
  if (late) return { kind: 'exited', ...late, timedOut: statOwn(timeoutMarker(state, run.id)) !== undefined };
  const nowId = run.pid !== null ? deps.lookup(run.pid) : undefined;
  const reused = nowId !== undefined && nowId.startTime !== run.start_time;
  return { kind: 'lost', why: reused ? `PID ${run.pid} now belongs to another process (never signalled)` : 'process and supervisor are gone', reused };
}

/** Take a run whose spawner died after starting it into the registry, as the spawner would have. */
function adopt(state: State, run: RunRow, child: ProcessIdentity, sup: ProcessIdentity | undefined, deps: RegistryDeps): void {
  state.db
    .prepare("UPDATE runs SET state = 'running', pid = ?, start_time = ?, boot_id = ?, pgid = ?, sup_pid = ?, sup_start_time = ?, log_path = ? WHERE id = ? AND ended_at IS NULL")
    .run(child.pid, child.startTime, child.bootId, child.pid, sup?.pid ?? null, sup?.startTime ?? null, run.mode === 'detached' ? logFile(state, run) : null, run.id);
  writePidFile(state, run, child);
  state.event({ command: deps.command, kind: 'run.adopted', subject: run.name, reason: `${run.id}: its spawner died after starting PID ${child.pid}; recorded from ${sup ? 'its supervisor' : 'the run id in its environment'}`, data: { run_id: run.id, pid: child.pid } }, deps.now);
}

/**
 * Close every registered run whose process has ended or whose PID now names another process,
 * and adopt the children of spawners that died while starting them. Also forgives earlier
 * failures of runs that have stayed up long enough. Returns the runs it closed.
 */
export function reconcile(state: State, deps: RegistryDeps): Array<{ run: RunRow; why: string }> {
  const closed: Array<{ run: RunRow; why: string }> = [];
  for (const run of liveRuns(state)) {
    const fate = runFate(state, run, deps);
    switch (fate.kind) {
      case 'wait':
        break;
      case 'adopt':
        adopt(state, run, fate.child, fate.sup, deps);
        break;
      case 'exited': {
        const st = decodeShellStatus(fate.rc);
        finishRun(state, run, { ...st, endedAt: fate.endedAt, timedOut: fate.timedOut, why: fate.timedOut ? 'ran past its timeout' : 'its supervisor recorded the exit' }, deps);
        closed.push({ run, why: 'exited' });
        break;
      }
      case 'lost':
        finishRun(state, run, { exitCode: null, signal: null, endedAt: deps.now, lost: true, why: fate.why }, deps);
        closed.push({ run, why: run.pid === null ? 'never started' : fate.reused ? 'pid reused' : 'gone' });
        break;
      case 'alive': {
        if (run.mode === 'detached' && deps.logMaxBytes) capLog(logFile(state, run), deps.logMaxBytes);
        const h = getHealth(state, run.name);
        const up = deps.now - run.started_at;
        const mode = modeAt(h, deps.now);
        if ((mode === 'half_open' && up >= deps.minUptimeMs) || (h.consecutiveFailures > 0 && mode === 'closed' && up >= deps.policy.resetAfterMs)) {
          setHealth(state, run.name, afterHealthyUptime(h), deps.now);
          state.event({ command: deps.command, kind: 'breaker.closed', subject: run.name, reason: `${run.id} has been up ${Math.round(up / 1000)}s: earlier failures forgiven` }, deps.now);
        }
        break;
      }
    }
  }
  return closed;
}
