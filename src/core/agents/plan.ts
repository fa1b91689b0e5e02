/**
 * What `agentctl up` does with each instance of each `[[agents]]` entry, decided from facts
 * (pure): leave a live run alone, report or restart one whose entry changed (drift), start
 * one that is not running when its restart policy says so, or say why not.
 */
import { fnv1a64 } from '../config/load.js';
import type { AgentSpec } from '../config/types.js';
import { restartsAfter } from '../restart.js';

/** What up reports for one instance. */
export type UpStatus = 'running' | 'started' | 'waiting' | 'refused' | 'drift' | 'exited' | 'failed' | 'down' | 'would_start' | 'would_restart';

/** The statuses that make `up` exit 1. */
export const BAD_STATUSES: ReadonlySet<UpStatus> = new Set(['refused', 'failed']);

/** An entry's instance names: the name itself, or name-1..name-N. */
export function instanceNames(spec: Pick<AgentSpec, 'name' | 'instances'>): string[] {
  return spec.instances > 1 ? Array.from({ length: spec.instances }, (_, i) => `${spec.name}-${i + 1}`) : [spec.name];
}

/**
 * The hash of what an entry starts: a run started under another hash is drift. Only what
 * shapes the process counts (command, folder, environment, limits, group), not the restart
 * policy, priority, instances or requires, which change nothing in a running process.
 */
export function entryHash(spec: AgentSpec): string {
  const vars = Object.entries(spec.envVars).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return fnv1a64(JSON.stringify([spec.command, spec.cwd, vars, spec.env ?? null, spec.timeoutMs ?? null, spec.memoryMax ?? null, spec.cpuTimeMs ?? null, spec.nice ?? null, spec.group]));
}

/** The entries in dependency order (what an entry requires comes first), file order otherwise. The config has refused cycles. */
export function orderFleet<T extends Pick<AgentSpec, 'name' | 'requires'>>(specs: readonly T[]): T[] {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const out: T[] = [];
  const placed = new Set<string>();
  const place = (s: T, depth = 0) => {
    if (placed.has(s.name) || depth > specs.length) return;
    for (const r of s.requires) {
      const dep = byName.get(r);
      if (dep) place(dep, depth + 1);
    }
    placed.add(s.name);
    out.push(s);
  };
  for (const s of specs) place(s);
  return out;
}

/** The entries named and, transitively, what they require: `up web` also brings up web's database. */
export function withRequired<T extends Pick<AgentSpec, 'name' | 'requires'>>(specs: readonly T[], names: readonly string[]): T[] {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const want = new Set<string>();
  const add = (n: string) => {
    if (want.has(n)) return;
    want.add(n);
    for (const r of byName.get(n)?.requires ?? []) add(r);
  };
  names.forEach(add);
  return specs.filter((s) => want.has(s.name));
}

/** What is known of one instance name when up looks. */
export interface InstanceFacts {
  readonly hash: string;
  readonly restart: AgentSpec['restart'];
  /** its live run, if any */
  readonly live?: { readonly runId: string; readonly pid: number | null; readonly state: string; readonly fleetHash: string | null } | undefined;
  /** its latest ended run, if any */
  readonly last?: { readonly runId: string; readonly state: string; readonly failure: string | null; readonly exitCode: number | null; readonly fleetHash: string | null } | undefined;
  /** `agentctl down` took it down and no `up NAME` has brought it back */
  readonly downed: boolean;
  readonly restartChanged: boolean;
}

export type InstancePlan =
  | { readonly action: 'none'; readonly status: UpStatus; readonly detail: string }
  | { readonly action: 'start'; readonly detail: string }
  | { readonly action: 'restart'; readonly runId: string; readonly detail: string };

/** The decision for one instance. */
export function planInstance(f: InstanceFacts): InstancePlan {
  if (f.live) {
    const l = f.live;
    const at = `run ${l.runId}${l.pid !== null ? `, PID ${l.pid}` : ''}`;
    if (l.fleetHash === null) return { action: 'none', status: 'running', detail: `${at}; not started by up` };
    if (l.fleetHash === f.hash) return { action: 'none', status: 'running', detail: l.state === 'starting' ? `${at}, starting` : at };
    if (f.restartChanged) return { action: 'restart', runId: l.runId, detail: `its entry changed since ${at} started` };
    return { action: 'none', status: 'drift', detail: `${at} runs an older definition of its entry; restart it with up --restart-changed` };
  }
  if (f.downed) return { action: 'none', status: 'down', detail: 'taken down by agentctl down; agentctl up NAME brings it back' };
  const last = f.last;
  // a run stopped on purpose, lost, or started from another definition: start it
  if (!last || last.state === 'stopped' || last.state === 'lost' || last.fleetHash !== f.hash) return { action: 'start', detail: last ? `last run ${last.runId} ${last.state}` : 'not running' };
  if (last.state === 'exited') {
    if (restartsAfter(f.restart, 'exited')) return { action: 'start', detail: `last run ${last.runId} exited 0; restart = always` };
    return { action: 'none', status: 'exited', detail: `run ${last.runId} exited 0; restart = ${f.restart} leaves it` };
  }
  // failed
  const how = `run ${last.runId} failed (${last.failure ?? 'failure'}${last.exitCode !== null ? `, exit ${last.exitCode}` : ''})`;
  if (!restartsAfter(f.restart, 'failed')) return { action: 'none', status: 'failed', detail: `${how}; restart = never` };
  return { action: 'start', detail: `${how}; restart = ${f.restart}` };
}

/** How an admission refusal reads in up's report: backoff, cooldown and rate limits are a wait with a time; the rest refuse. */
export function refusalStatus(reason: string, retryAt: number | undefined): 'running' | 'waiting' | 'refused' {
  if (reason === 'already_running') return 'running'; // another up (or spawn) started it first
  if (retryAt !== undefined && (reason === 'backoff' || reason === 'cooldown' || reason === 'rate_limit')) return 'waiting';
  return 'refused';
}
