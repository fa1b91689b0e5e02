/**
 * Ending registered runs on purpose (reap, stop, dedupe): identity check, the one escalation
 * routine, and the record of how each ended. Also the guard against other users' processes.
 */
import type { LoadedConfig } from './config.js';
import { ExitError, EXIT, UsageError } from './errors.js';
import { getIdentity, type ProcessIdentity } from './identity.js';
import { endTree, protectedPids, type EndResult } from './kill.js';
import type { ProcDetail } from './proc.js';
import { registryFor } from './spawn/spawn.js';
import { finishRun, getRun, runIdentity, stopMarker, type RunRow } from './spawn/runs.js';
import type { State } from './state.js';

export interface Ended {
  readonly run_id?: string;
  readonly name?: string;
  readonly pid: number;
  readonly graceful: boolean;
  readonly forced: boolean;
  readonly swept: readonly number[];
  readonly survivors: readonly number[];
  readonly duration_ms: number;
}

const toEnded = (pid: number, r: EndResult, run?: RunRow): Ended => ({
  ...(run ? { run_id: run.id, name: run.name } : {}),
  pid,
  graceful: r.graceful,
  forced: r.forced,
  swept: r.swept,
  survivors: r.survivors,
  duration_ms: r.durationMs,
});

/**
 * End a registered run's tree and record it: `how` says whether it counts against the worker
 * (timeout: a hung or overdue run) or was a deliberate stop (not a failure).
 */
export async function endRun(state: State, config: LoadedConfig, run: RunRow, graceMs: number, how: { timedOut: boolean; why: string; command: string }): Promise<Ended | undefined> {
  const id = runIdentity(run);
  if (!id) return undefined;
  // say why before the first signal: whoever records the exit (a waiting foreground spawn, a
  // detached supervisor's file, this call) records it as a stop or a timeout, not a crash
  state.write(() => state.setKv(stopMarker(run.id), { timedOut: how.timedOut, why: how.why }));
  const r = await endTree(id, { runId: run.id, graceMs });
  state.write(() => {
    const cur = getRun(state, run.id);
    if (!cur || cur.ended_at !== null) return; // its supervisor's record won the race
    finishRun(state, cur, { exitCode: null, signal: r.graceful ? 'SIGTERM' : 'SIGKILL', endedAt: Date.now(), timedOut: how.timedOut, stoppedByUs: !how.timedOut, why: how.why }, registryFor(config, Date.now(), how.command));
  });
  return toEnded(id.pid, r, run);
}

/** End an unregistered process tree (an orphan agent, a duplicate worker). */
export async function endProcess(id: ProcessIdentity, graceMs: number): Promise<Ended> {
  return toEnded(id.pid, await endTree(id, { graceMs }));
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
  const self = getIdentity(process.pid);
  return state.write(() => {
    const cur = state.getKv<ProcessIdentity>(key)?.value;
    if (cur) {
      const live = getIdentity(cur.pid);
      if (live && live.startTime === cur.startTime && live.bootId === cur.bootId) return cur;
    }
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
