/**
 * Runs whose detached supervisor waits to restart them (`spawn -d --restart`,
 * core/spawn/restart.ts): which they are, for `ps`, and ending them, for `stop`.
 */
import { bootId } from '../identity.js';
import { signalProcess } from '../kill.js';
import type { State } from '../state.js';
import { type RegistryDeps, type RunRow, supervisorAlive } from './registry.js';

/** Ended runs whose supervisor still waits to restart them, newest first per name (ps, stop). */
export function waitingRestarts(state: State, lookup: RegistryDeps['lookup']): RunRow[] {
  const rows = state.db.prepare("SELECT * FROM runs WHERE restart_status = 'waiting' ORDER BY started_at").all() as RunRow[];
  return rows.filter((r) => supervisorAlive(r, lookup));
}

/**
 * `stop` (and `down`): end the restart policy of the waiting runs it selects, in one
 * transaction (an admission that has not yet claimed the restart then never will: record.ts),
 * then end each waiting supervisor's process group (the shell, its `sleep`, an ask in flight)
 * once the shell's identity is proved. Returns the runs whose restart it ended.
 */
export function endWaitingRestarts(state: State, wanted: (r: RunRow) => boolean, command: string, lookup: RegistryDeps['lookup']): RunRow[] {
  const ended = state.write(() => {
    const rows = (state.db.prepare("SELECT * FROM runs WHERE restart_status = 'waiting'").all() as RunRow[]).filter(wanted);
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
