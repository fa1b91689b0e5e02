/**
 * A run's files in the state folder: its log, exit status, timeout marker, child PID and PID
 * file. Every path is derived from a validated name and run id, never taken from a stored
 * path, and every read refuses links and files that are not ours (core/safefs.ts).
 */
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { StateError } from '../errors.js';
import { ensurePrivateDir, removeFile, writeFileAtomic } from '../fsutil.js';
import type { ProcessIdentity } from '../identity.js';
import { NAME_RE } from '../names.js';
import { readOwn, statOwn, truncateOwn } from '../safefs.js';
import type { PruneLimits, State } from '../state.js';

/**
 * Keep a log under `max` bytes while its writer runs: its newest half is copied to <log>.prev
 * and the log is truncated. The child writes with O_APPEND, so its next write lands at the new end.
 * Never through a link: the log must be a plain file of ours, and .prev is written new and
 * renamed into place. A log at most `over` bytes long is left alone (the supervisor caps its
 * run's log at `max` itself: reconcile steps in only when it fell far behind or is an old one).
 */
export function capLog(path: string, max: number, over = max): boolean {
  try {
    const st = statOwn(path);
    if (!st || st.size <= over) return false;
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
  if (!RUN_ID_RE.test(id))
    throw new StateError(`state holds a run id that agentctl never makes (${JSON.stringify(id.slice(0, 40))}); the state file is damaged or was written by someone else`, 'runs', 1, 'state_corrupt');
  return id;
}

export function safeName(name: string): string {
  if (!NAME_RE.test(name) || name.includes('..'))
    throw new StateError(
      `state holds a run name that agentctl never accepts (${JSON.stringify(name.slice(0, 40))}); the state file is damaged or was written by someone else`,
      'runs',
      1,
      'state_corrupt',
    );
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

/** A log's file name: `<name>.<run id>.log`, or its capped half `<name>.<run id>.log.prev`. */
const LOG_FILE_RE = /^(.+)\.(r[0-9a-z]{6,20})\.log(\.prev)?$/;

/**
 * Prune the history (State.prune: events, samples, ended runs), then the logs of the runs it
 * no longer holds: a log goes with its run's row. Only plain files named as agentctl names
 * logs, whose run id has no row, are removed (a run's row is written before its log, so a
 * starting run's log always has one). Returns what State.prune returned (undefined: not due).
 */
export function pruneHistory(state: State, limits: PruneLimits, now: number): (NonNullable<ReturnType<State['prune']>> & { logs?: number }) | undefined {
  const r = state.prune(limits, now);
  if (!r) return undefined;
  let files: string[];
  try {
    files = readdirSync(state.paths.logs);
  } catch {
    return r;
  }
  const known = state.db.prepare('SELECT 1 AS known FROM runs WHERE id = ?');
  let logs = 0;
  for (const f of files) {
    const m = LOG_FILE_RE.exec(f);
    if (!m || !NAME_RE.test(m[1]!) || state.guard(() => known.get(m[2]!)) !== undefined) continue;
    const path = join(state.paths.logs, f);
    try {
      if (!lstatSync(path).isFile()) continue;
      removeFile(path);
      logs += 1;
    } catch {
      /* gone meanwhile */
    }
  }
  return { ...r, logs };
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
  // no fsync: after a crash the process it names is gone too (and its boot id says so)
  writeFileAtomic(pidFile(state, run.name), `${id.pid}\n${JSON.stringify(entry)}\n`, 0o600, { sync: false });
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
      const identity =
        e && Number.isInteger(e.pid) && (e.pid as number) > 1 && typeof e.start_time === 'string' && typeof e.boot_id === 'string'
          ? { pid: e.pid!, startTime: e.start_time, bootId: e.boot_id }
          : undefined;
      const named = typeof e.name === 'string' && `${e.name}.pid` === f && NAME_RE.test(e.name) && typeof e.run_id === 'string' && RUN_ID_RE.test(e.run_id);
      const entry =
        identity && named
          ? {
              run_id: e.run_id!,
              name: e.name!,
              group: typeof e.group === 'string' && NAME_RE.test(e.group) ? e.group : 'default',
              pid: identity.pid,
              start_time: identity.startTime,
              boot_id: identity.bootId,
            }
          : undefined;
      return { path, identity, entry };
    });
}

/** The valid entries of the PID files (see pidFiles): what `stop` can act on without the database. */
export function readPidFiles(pidsDir: string): PidFileEntry[] {
  return pidFiles(pidsDir).flatMap((f) => (f.entry ? [f.entry] : []));
}

/** What reconcile makes of a live run row right now (pure but for reading files and /proc). */
