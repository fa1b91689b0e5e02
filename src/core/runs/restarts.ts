/**
 * Runs whose detached supervisor waits to restart them (`spawn -d --restart`,
 * core/spawn/restart.ts): which they are, for `ps`, and ending them, for `stop`.
 */
import { bootId } from '../identity.js';
import { signalProcess } from '../kill.js';
import type { State } from '../state.js';
import { addToDlq } from './end.js';
import { type RegistryDeps, type RunRow, supervisorAlive } from './registry.js';

/**
 * Ended runs under a restart policy whose restart is still to come: waiting for it, or not
 * yet decided (the run ended and its supervisor's `_restart` has not asked yet: a `stop` in
 * that moment must end the policy too, or the run would come back after it).
 */
const PENDING = "restart_policy IS NOT NULL AND ended_at IS NOT NULL AND (restart_status = 'waiting' OR restart_status IS NULL)";
/** The same as two lookups in the runs_restart_pending index (every reconcile asks: no scan of all runs). */
const PENDING_ROWS = `SELECT * FROM runs WHERE restart_policy IS NOT NULL AND ended_at IS NOT NULL AND restart_status = 'waiting'
  UNION ALL SELECT * FROM runs WHERE restart_policy IS NOT NULL AND ended_at IS NOT NULL AND restart_status IS NULL`;

/** Runs whose restart is still to come, oldest first (stop --dry-run lists them all). */
export function pendingRestarts(state: State): RunRow[] {
  return (state.db.prepare(PENDING_ROWS).all() as RunRow[]).sort((a, b) => a.started_at - b.started_at);
}

/** Ended runs whose supervisor still waits to restart them (ps). */
export function waitingRestarts(state: State, lookup: RegistryDeps['lookup']): RunRow[] {
  return pendingRestarts(state).filter((r) => supervisorAlive(r, lookup));
}

/**
 * Restarts that can no longer come: their supervisor is gone (killed, the host's OOM killer,
 * an ask that kept failing, a restart whose new run never got a supervisor). Each gives up
 * into the dead-letter queue, where `dlq retry` can start it again, and says so
 * (`restart.gave_up`): a policy never ends without a word. Inside the caller's write.
 */
export function abandonedRestarts(state: State, deps: Pick<RegistryDeps, 'lookup' | 'now' | 'command'>): void {
  for (const r of pendingRestarts(state)) {
    if (supervisorAlive(r, deps.lookup)) continue;
    const reason = r.sup_pid === null ? 'it never got a supervisor' : 'its supervisor ended before restarting it';
    if (!state.db.prepare(`UPDATE runs SET restart_status = 'gave_up', restart_at = NULL WHERE id = ? AND ${PENDING}`).run(r.id).changes) continue;
    addToDlq(state, r, { failure: r.failure, error: `restart abandoned: ${reason}`, restarts: r.restart_attempt ?? 0, exitCode: r.exit_code, signal: r.signal }, deps.now, deps.command);
    state.event({ command: deps.command, kind: 'restart.gave_up', subject: r.name, reason: `${r.id}: ${reason}`, data: { run_id: r.id } }, deps.now);
  }
}

/**
 * `stop` (and `down`): end the restart policy of the waiting runs it selects, in one
 * transaction (an admission that has not yet claimed the restart then never will: record.ts),
 * then end each waiting supervisor's process group (the supervisor, the shell's `sleep`, an
 * ask in flight) once the supervisor's identity is proved. Returns the runs whose restart it ended.
 */
export function endWaitingRestarts(state: State, wanted: (r: RunRow) => boolean, command: string, lookup: RegistryDeps['lookup']): RunRow[] {
  const ended = state.write(() => {
    const rows = pendingRestarts(state).filter(wanted);
    for (const r of rows) {
      state.db.prepare("UPDATE runs SET restart_status = 'stopped', restart_at = NULL WHERE id = ?").run(r.id);
      state.event({ command, kind: 'restart.ended', subject: r.name, reason: `${r.id}: its restart was ended by agentctl ${command}`, data: { run_id: r.id } });
    }
    return rows;
  });
  for (const r of ended) {
    if (r.sup_pid === null || r.sup_start_time === null || !supervisorAlive(r, lookup)) continue;
    signalProcess({ pid: r.sup_pid, startTime: r.sup_start_time, bootId: r.boot_id ?? bootId() }, 'SIGTERM', { group: true });
  }
  return ended;
}

/**
 * After endWaitingRestarts: wait up to `graceMs` for each ended restart's supervisor to go
 * (a shell with no trap dies of the TERM at once), then KILL the group of any still there,
 * its identity proved again right before. Returns the supervisors still alive after that.
 */
export async function settleRestarts(ended: readonly RunRow[], graceMs: number, lookup: RegistryDeps['lookup'], sleep: (ms: number) => Promise<void>): Promise<number[]> {
  const alive = () => ended.filter((r) => supervisorAlive(r, lookup));
  const until = Date.now() + graceMs;
  while (alive().length && Date.now() < until) await sleep(50);
  for (const r of alive()) signalProcess({ pid: r.sup_pid!, startTime: r.sup_start_time!, bootId: r.boot_id ?? bootId() }, 'SIGKILL', { group: true });
  if (alive().length) await sleep(100);
  return alive().map((r) => r.sup_pid!);
}
