/**
 * The host's agent cap, as `ps`, `throttle-status` and `doctor` show it: the agents on the host
 * (live registered runs of every group, plus agents agentctl did not start when
 * `spawn.count_unmanaged` is on) against the throttle level's max agents. Admission counts the
 * same way inside its transaction (spawn.ts); this is the read-only view.
 */
import type { Config } from './config/types.js';
import { readProcStat } from './identity.js';
import { countAgents, type ProcInfo, programName } from './proc.js';
import type { RunRow } from './runs/registry.js';
import type { State } from './state.js';
import type { LevelState } from './throttle.js';

/** An agent-pattern process that is not agentctl (nor a supervisor), with its process group. */
export interface AgentCandidate {
  readonly pid: number;
  readonly pgid: number | undefined;
}

/** Agent-pattern processes that are not agentctl or a detached run's supervisor; read once, outside any transaction. */
export function agentCandidates(procs: readonly ProcInfo[], agents: Config['agents']): AgentCandidate[] {
  const byPid = new Map(procs.map((p) => [p.pid, p]));
  return countAgents(procs, agents)
    .agentPids.filter((pid) => programName(byPid.get(pid)?.argv ?? []) !== 'agentctl')
    .map((pid) => ({ pid, pgid: readProcStat(pid)?.pgid }));
}

/** Those candidates no live run owns: not a run's process or supervisor, not in a run's process group. */
export function notRuns(candidates: readonly AgentCandidate[], live: readonly RunRow[]): AgentCandidate[] {
  const pgids = new Set(live.flatMap((r) => (r.pgid !== null ? [r.pgid] : [])));
  const ours = new Set(live.flatMap((r) => [r.pid, r.sup_pid].filter((p): p is number => p !== null)));
  return candidates.filter((a) => !ours.has(a.pid) && (a.pgid === undefined || !pgids.has(a.pgid)));
}

/** Agents agentctl did not start (admission counts the same two steps, inside its transaction). */
export function unmanagedAgents(procs: readonly ProcInfo[], live: readonly RunRow[], agents: Config['agents']): number[] {
  return notRuns(agentCandidates(procs, agents), live).map((a) => a.pid);
}

export interface HostAgents {
  /** live registered runs, all groups */
  readonly managed: number;
  /** agent-pattern processes agentctl did not start (counted only with spawn.count_unmanaged) */
  readonly unmanaged: number;
  /** what the cap counts: managed + unmanaged (when counted) */
  readonly agents: number;
  /** the last recorded throttle level (0 before any reading) */
  readonly level: number;
  /** the level's max agents; null when throttling is off (AGENTCTL_DISABLE_THROTTLE) */
  readonly max_agents: number | null;
}

/** The level the last throttle reading left (no new reading: that costs a CPU window). */
export function lastLevel(state: State): number {
  return state.getKv<LevelState>('throttle.state')?.value.level ?? 0;
}

export function hostAgents(config: Config, facts: { managed: number; unmanaged: number; level: number; disabled: boolean }): HostAgents {
  const unmanaged = config.spawn.countUnmanaged ? facts.unmanaged : 0;
  return {
    managed: facts.managed,
    unmanaged,
    agents: facts.managed + unmanaged,
    level: facts.level,
    max_agents: facts.disabled ? null : (config.throttle.maxAgents[facts.level] ?? null),
  };
}
