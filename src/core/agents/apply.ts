/**
 * `agentctl up`: gather what the state knows of each instance, plan it (plan.ts), and start
 * what should run through the same admission as `spawn -d` (spawnRun: breaker, backoff, caps,
 * requires, one live run per name in the admission transaction, so two `up` at once start
 * each instance once). Entries start in dependency order, a level at a time.
 */
import { statSync } from 'node:fs';
import type { AgentSpec, LoadedConfig } from '../config/types.js';
import type { Ctx } from '../ctx.js';
import { ExitError } from '../errors.js';
import { endRun } from '../runs/end.js';
import { reconcileAll } from '../runs/reconcile.js';
import { getRun, liveRuns, type RunRow } from '../runs/registry.js';
import { spawnDeps, type SpawnDeps, type SpawnRequest } from '../spawn/deps.js';
import { findForker } from '../spawn/launch.js';
import { spawnRun } from '../spawn/spawn.js';
import type { State } from '../state.js';
import { ensureEnv } from './env.js';
import { entryHash, instanceNames, type InstanceFacts, type InstancePlan, orderFleet, planInstance, refusalStatus, type UpStatus } from './plan.js';

/** One instance's line in up's report. */
export interface UpRow {
  readonly entry: string;
  readonly name: string;
  readonly status: UpStatus;
  readonly detail: string;
  readonly run_id: string | null;
  readonly pid: number | null;
  /** when a waiting instance can start, ISO */
  readonly retry_at: string | null;
}

export interface UpOptions {
  readonly dryRun: boolean;
  readonly restartChanged: boolean;
  /** TERM-to-KILL grace for a restart */
  readonly graceMs: number;
  /** `up NAME...`: the entries given (and what they require) come back from `down` */
  readonly revive: boolean;
}

/** kv key `agentctl down` leaves per instance, so a cron `up` does not undo it. */
export const downMarker = (name: string) => `fleet.down:${name}`;

const row = (entry: string, name: string, status: UpStatus, detail: string, extra: Partial<UpRow> = {}): UpRow => ({
  entry,
  name,
  status,
  detail,
  run_id: null,
  pid: null,
  retry_at: null,
  ...extra,
});

/** Bring the entries up; the rows come in dependency order. */
export async function upFleet(ctx: Ctx, loaded: LoadedConfig, specs: readonly AgentSpec[], o: UpOptions): Promise<UpRow[]> {
  const state = ctx.state();
  if (!o.dryRun) reconcileAll(state, loaded, ctx.now(), 'up');
  if (!o.dryRun && o.revive) state.write(() => specs.flatMap((s) => instanceNames(s)).forEach((n) => state.db.prepare('DELETE FROM kv WHERE key = ?').run(downMarker(n))));
  const byEntry = new Map<string, UpRow[]>();
  let deps: SpawnDeps | undefined; // the host is sampled once, and only when something starts
  // one forker forks every supervisor this up starts (forker.ts); found only when something starts
  const lazyDeps = () => {
    if (deps) return deps;
    const base = onceThrottle(spawnDeps(ctx, loaded, 'up'));
    return (deps = { ...base, forker: findForker(base.env) });
  };
  try {
    for (const level of levels(orderFleet(specs))) {
      const live = liveRuns(state);
      await Promise.all(
        level.map(async (spec) => {
          const hash = entryHash(spec);
          const blocked = blockedBy(spec, byEntry);
          const rows = await Promise.all(
            instanceNames(spec).map((name) => {
              const plan = planInstance(instanceFacts(state, live, name, hash, spec, o));
              return applyPlan(ctx, loaded, lazyDeps, { spec, name, hash, plan, blocked, live }, o);
            }),
          );
          byEntry.set(spec.name, rows);
        }),
      );
    }
  } finally {
    deps?.forker?.close();
    if (deps?.forker && ctx.env.AGENTCTL_DEBUG) ctx.note(`agentctl: ${deps.forker.count} supervisors forked by ${deps.forker.perl}`);
  }
  return orderFleet(specs).flatMap((s) => byEntry.get(s.name) ?? []);
}

/** Entries grouped by depth: those requiring nothing first, then those requiring only them... */
function levels(ordered: readonly AgentSpec[]): AgentSpec[][] {
  const depth = new Map<string, number>();
  const out: AgentSpec[][] = [];
  for (const s of ordered) {
    const d = s.requires.reduce((m, r) => Math.max(m, (depth.get(r) ?? -1) + 1), 0);
    depth.set(s.name, d);
    (out[d] ??= []).push(s);
  }
  return out.filter(Boolean);
}

/** Why an entry cannot start yet because of what it requires, or undefined. */
function blockedBy(spec: AgentSpec, done: ReadonlyMap<string, UpRow[]>): { status: 'waiting' | 'refused'; detail: string } | undefined {
  const ok = new Set<UpStatus>(['running', 'started', 'drift', 'would_start', 'would_restart']);
  for (const r of spec.requires) {
    const bad = (done.get(r) ?? []).find((x) => !ok.has(x.status));
    if (bad) return { status: bad.status === 'waiting' ? 'waiting' : 'refused', detail: `requires ${r}, which is ${bad.status} (${bad.name}: ${bad.detail})` };
  }
  return undefined;
}

function instanceFacts(state: State, live: readonly RunRow[], name: string, hash: string, spec: AgentSpec, o: UpOptions): InstanceFacts {
  const l = live.find((r) => r.name === name);
  const last = l
    ? undefined
    : (state.db.prepare('SELECT id, state, failure, exit_code, fleet_hash FROM runs WHERE name = ? AND ended_at IS NOT NULL ORDER BY started_at DESC LIMIT 1').get(name) as
        { id: string; state: string; failure: string | null; exit_code: number | null; fleet_hash: string | null } | undefined);
  return {
    hash,
    restart: spec.restart,
    live: l ? { runId: l.id, pid: l.pid, state: l.state, fleetHash: l.fleet_hash ?? null } : undefined,
    last: last ? { runId: last.id, state: last.state, failure: last.failure, exitCode: last.exit_code, fleetHash: last.fleet_hash } : undefined,
    downed: !o.revive && state.getKv(downMarker(name)) !== undefined,
    restartChanged: o.restartChanged,
  };
}

interface Step {
  readonly spec: AgentSpec;
  readonly name: string;
  readonly hash: string;
  readonly plan: InstancePlan;
  readonly blocked: ReturnType<typeof blockedBy>;
  /** the live runs as the level began */
  readonly live: readonly RunRow[];
}

async function applyPlan(ctx: Ctx, loaded: LoadedConfig, deps: () => SpawnDeps, step: Step, o: UpOptions): Promise<UpRow> {
  const { spec, name, plan } = step;
  if (plan.action === 'none') {
    const live = plan.status === 'running' || plan.status === 'drift' ? step.live.find((r) => r.name === name) : undefined;
    return row(spec.name, name, plan.status, plan.detail, live ? { run_id: live.id, pid: live.pid } : {});
  }
  if (step.blocked) return row(spec.name, name, step.blocked.status, step.blocked.detail);
  if (o.dryRun) return row(spec.name, name, plan.action === 'start' ? 'would_start' : 'would_restart', plan.detail);
  const state = ctx.state();
  // a folder that is gone fails its entry alone, as a command that is not found would (and
  // before a restart stops what runs)
  if (!isDirectory(spec.cwd)) return row(spec.name, name, 'failed', `cannot start in ${spec.cwd}: no such folder`);
  if (plan.action === 'restart') {
    const run = getRun(state, plan.runId);
    if (run && run.ended_at === null) await endRun(state, loaded, run, o.graceMs, { timedOut: false, why: 'restarted by agentctl up --restart-changed: its entry changed', command: 'up' });
  }
  if (spec.env) {
    const problem = await ensureEnv(state, loaded, spec.env, ctx.now());
    if (problem) return row(spec.name, name, 'refused', problem);
  }
  return start(deps(), step, state);
}

async function start(deps: SpawnDeps, step: Step, state: State): Promise<UpRow> {
  const { spec, name } = step;
  const req: SpawnRequest = {
    name,
    group: spec.group,
    priority: spec.priority,
    requires: spec.requires.flatMap((r) => instanceNamesOf(r, deps)),
    ifNotRunning: false,
    detach: true,
    timeoutMs: spec.timeoutMs,
    killGraceMs: deps.config.config.spawn.killGraceMs,
    limits: { memoryMax: spec.memoryMax, cpuTimeSec: spec.cpuTimeMs !== undefined ? Math.ceil(spec.cpuTimeMs / 1000) : undefined, nice: spec.nice },
    command: spec.command,
    cwd: spec.cwd,
    env: spec.env?.name,
  };
  // env_vars reach the child through the supervisor's environment, like the caller's own
  let r: Awaited<ReturnType<typeof spawnRun>>;
  try {
    r = await spawnRun({ ...deps, env: { ...deps.env, ...spec.envVars } }, req, true);
  } catch (err) {
    // one instance that could not start fails alone; the state failing ends the command
    if (err instanceof ExitError) throw err;
    return row(spec.name, name, 'failed', `could not start: ${(err as Error).message}`);
  }
  if (r.outcome === 'started') {
    state.write(() => state.db.prepare('UPDATE runs SET fleet_file = ?, fleet_hash = ? WHERE id = ?').run(spec.file, step.hash, r.runId));
    return row(spec.name, name, 'started', `run ${r.runId}, PID ${r.pid} (${step.plan.detail})`, { run_id: r.runId, pid: r.pid });
  }
  if (r.outcome === 'refused') {
    const d = r.decision;
    const status = refusalStatus(d.reason, d.retryAt);
    return row(spec.name, name, status, d.message, { run_id: d.runId ?? null, pid: d.pid ?? null, retry_at: d.retryAt !== undefined ? new Date(d.retryAt).toISOString() : null });
  }
  return row(spec.name, name, 'running', r.outcome === 'already_running' ? `run ${r.runId}` : 'ran in the foreground', { run_id: r.runId, pid: r.pid });
}

/** A required entry's instance names, from the config the deps carry. */
function instanceNamesOf(entry: string, deps: SpawnDeps): string[] {
  const spec = deps.config.config.fleetAgents.find((s) => s.name === entry);
  return spec ? instanceNames(spec) : [entry];
}

/** The throttle is read once per up, however many instances start; the registry reconciled at most once a second. */
function onceThrottle(deps: SpawnDeps): SpawnDeps {
  let cap: ReturnType<SpawnDeps['throttle']> | undefined;
  // and the registry reconciled once per burst (up reconciled as it began): 20 entries made 20
  // reconciles of a growing list of runs
  return { ...deps, throttle: () => (cap ??= deps.throttle()), reconcileReuseMs: 1000 };
}

/** The live runs `up` started from this config's files whose entry (or instance) is gone: `up --prune` stops them. */
export function orphanedFleetRuns(state: State, loaded: LoadedConfig): RunRow[] {
  const names = new Set(loaded.config.fleetAgents.flatMap((s) => instanceNames(s)));
  const files = new Set(loaded.files);
  return liveRuns(state).filter((r) => r.fleet_file != null && files.has(r.fleet_file) && !names.has(r.name));
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
