/**
 * Ending registered runs on purpose (reap, stop, dedupe): identity check, the one escalation
 * routine, and the record of how each ended. Also the guard against other users' processes.
 */
import type { LoadedConfig } from './config/types.js';
import { EXIT, ExitError, StateError, UsageError } from './errors.js';
import { getIdentity, isSameProcess, type ProcessIdentity } from './identity.js';
import { type Ended, endTree, protectedPids } from './kill.js';
import type { ProcDetail } from './proc.js';
import { registryFor } from './runs/reconcile.js';
import { finishRun, stopMarker, type StopMarker } from './runs/end.js';
import { getRun, runIdentity, type RunRow } from './runs/registry.js';
import type { PidFileEntry } from './runs/files.js';
import type { State } from './state.js';

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
  const r = await endTree(id, { runId: run.id, graceMs });
  const finishError = tryRecord(state, () => {
    const cur = getRun(state, run.id);
    if (!cur || cur.ended_at !== null) return; // its supervisor's record won the race
    finishRun(state, cur, { exitCode: null, signal: r.graceful ? 'SIGTERM' : 'SIGKILL', endedAt: Date.now(), timedOut: how.timedOut, stoppedByUs: !how.timedOut, why: how.why }, registryFor(config, Date.now(), how.command));
  });
  return withRun(r, run, finishError ?? markError);
}

let self: ProcessIdentity | undefined | null = null;
const selfIdentity = () => (self === null ? (self = getIdentity(process.pid)) : self);

/**
 * End a run known only from its PID file, when the state cannot be read (a full disk): the
 * identity there is checked before every signal like any other, and nothing is recorded.
 */
export async function endFromPidFile(entry: PidFileEntry, graceMs: number, recordError: string): Promise<Ended> {
  const id = { pid: entry.pid, startTime: entry.start_time, bootId: entry.boot_id };
  return withRun(await endTree(id, { runId: entry.run_id, graceMs }), { id: entry.run_id, name: entry.name }, recordError);
}

/** End an unregistered process tree (an orphan agent, a duplicate worker). */
export function endProcess(id: ProcessIdentity, graceMs: number): Promise<Ended> {
  return endTree(id, { graceMs });
}

/** --all-users is for root only; without it, only our own processes are candidates. */
export function userFilter(allUsers: boolean, flag = '--all-users'): (p: Pick<ProcDetail, 'uid' | 'pid'>) => boolean {
  const me = process.getuid?.() ?? -1;
  if (allUsers && me !== 0) throw new UsageError(`${flag}: only root may act on other users' processes`);
  const guard = protectedPids();
  return (p) => !guard.has(p.pid) && (allUsers || p.uid === me);
}

/** A lock in the state db keyed on the holder's identity; a dead holder's lock is taken over. */
export function takeLock(state: State, key: string): ProcessIdentity | undefined {
  const self = selfIdentity();
  return state.write(() => {
    const cur = state.getKv<ProcessIdentity>(key)?.value;
    if (cur && isSameProcess(cur)) return cur;
    if (self) state.setKv(key, self);
    return undefined;
  });
}

export function releaseLock(state: State, key: string): void {
  state.write(() => {
    const cur = state.getKv<ProcessIdentity>(key)?.value;
    if (cur && cur.pid === process.pid) state.db.prepare('DELETE FROM kv WHERE key = ?').run(key);
  });
}

export function failIfSurvivors(ended: readonly Ended[]): void {
  const left = ended.flatMap((e) => e.survivors);
  if (left.length) throw new ExitError(EXIT.failed, `could not end PID ${left.join(', ')}`, 'survivors');
}
