/**
 * What a spawn ends in (`SpawnResult`), and its --json document (`SpawnOutput`), which spawn
 * prints and dlq retry nests in its own.
 */
import type { Refusal } from './admission.js';
import type { LimitMechanism } from './launch.js';

export type SpawnResult =
  | { readonly outcome: 'refused'; readonly decision: Refusal; readonly waitedMs: number }
  | { readonly outcome: 'already_running'; readonly runId: string; readonly pid: number | null }
  | {
      readonly outcome: 'started';
      readonly runId: string;
      readonly pid: number;
      readonly name: string;
      readonly logPath: string;
      readonly limitMechanism: LimitMechanism;
      readonly trial: boolean;
      readonly waitedMs: number;
      readonly ports: readonly number[];
    }
  | {
      readonly outcome: 'finished';
      readonly runId: string;
      readonly pid: number;
      readonly name: string;
      readonly exitCode: number | null;
      readonly signal: string | null;
      readonly failure: string | null;
      readonly durationMs: number;
      /** what it used (runs/usage.ts); null when unknown */
      readonly cpuMs: number | null;
      readonly peakRssBytes: number | null;
      readonly limitMechanism: LimitMechanism;
      readonly timedOut: boolean;
      readonly waitedMs: number;
      /** what agentctl exits with: the child's code, or 128 + signal number */
      readonly passThrough: number;
    };

/** spawn's --json document: snake_case like every other command's, one shape per outcome. */
export type SpawnOutput =
  | {
      outcome: 'refused';
      reason: string;
      exit_code: number;
      message: string;
      retry_at: string | null;
      run_id: string | null;
      pid: number | null;
      waited_ms: number;
      /** fleet_full: the group's leases across the fleet, per host */
      fleet?: { group: string; used: number; cap: number; hosts: Record<string, number> };
    }
  | { outcome: 'already_running'; run_id: string; pid: number | null }
  | { outcome: 'started'; run_id: string; pid: number; name: string; log_path: string; limit_mechanism: string; trial: boolean; waited_ms: number; ports: readonly number[] }
  | {
      outcome: 'finished';
      run_id: string;
      pid: number;
      name: string;
      exit_code: number | null;
      signal: string | null;
      failure: string | null;
      duration_ms: number;
      cpu_ms: number | null;
      peak_rss_bytes: number | null;
      timed_out: boolean;
      limit_mechanism: string;
      waited_ms: number;
    };

export function spawnJson(r: SpawnResult): SpawnOutput {
  switch (r.outcome) {
    case 'refused': {
      const d = r.decision;
      return {
        outcome: 'refused',
        reason: d.reason,
        exit_code: d.exitCode,
        message: d.message,
        retry_at: d.retryAt !== undefined ? new Date(d.retryAt).toISOString() : null,
        run_id: d.runId ?? null,
        pid: d.pid ?? null,
        waited_ms: r.waitedMs,
        ...(d.fleet ? { fleet: { group: d.fleet.group, used: d.fleet.used, cap: d.fleet.cap, hosts: Object.fromEntries(d.fleet.hosts.map((h) => [h.host, h.n])) } } : {}),
      };
    }
    case 'already_running':
      return { outcome: 'already_running', run_id: r.runId, pid: r.pid };
    case 'started':
      return { outcome: 'started', run_id: r.runId, pid: r.pid, name: r.name, log_path: r.logPath, limit_mechanism: r.limitMechanism, trial: r.trial, waited_ms: r.waitedMs, ports: r.ports };
    case 'finished':
      return {
        outcome: 'finished',
        run_id: r.runId,
        pid: r.pid,
        name: r.name,
        exit_code: r.exitCode,
        signal: r.signal,
        failure: r.failure,
        duration_ms: r.durationMs,
        cpu_ms: r.cpuMs,
        peak_rss_bytes: r.peakRssBytes,
        timed_out: r.timedOut,
        limit_mechanism: r.limitMechanism,
        waited_ms: r.waitedMs,
      };
  }
}
