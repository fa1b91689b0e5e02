/**
 * `spawn -d --restart`: what a run's supervisor does once the run has ended. Its shell asks
 * `agentctl _restart RUN_ID` (restartStep) and sleeps as told; no node process stays while it
 * waits. Each ask records the end the normal way (reconcile: health, backoff, breaker, DLQ),
 * decides once with the one policy engine (core/restart.ts), and when the time has come asks
 * admission again through the very transaction `spawn -d` uses: never around the breaker or
 * the caps. `stop` ends a waiting restart and `ps` shows it (runs/restarts.ts).
 */
import { isAbsolute } from 'node:path';
import { NAME_RE } from '../names.js';
import { restartDecision, RESTART_POLL_MS } from '../restart.js';
import { addToDlq } from '../runs/end.js';
import { getHealth } from '../runs/health.js';
import { reconcile } from '../runs/reconcile.js';
import { getRun, type RegistryDeps, registryFor, type RunRow } from '../runs/registry.js';
import type { State } from '../state.js';
import type { SpawnDeps, SpawnRequest } from './deps.js';
import { RestartCancelled } from './record.js';
import { spawnRun } from './spawn.js';

/** What the supervisor is told: sleep this long and ask again, or stop asking. */
export type RestartReply = { readonly sleepMs: number; readonly why: string } | { readonly done: string };

/**
 * One ask of a waiting supervisor (`agentctl _restart RUN_ID`). `admit: false` (the config is
 * broken: its caps and levels are unknown) records the end and decides, but never admits: the
 * built-in defaults could let a restart go around a configured cap. It asks again later.
 */
export async function restartStep(deps: SpawnDeps, runId: string, o: { admit: boolean } = { admit: true }): Promise<RestartReply> {
  const { state } = deps;
  const due = state.write((): RestartReply | RunRow => {
    const now = deps.now();
    const reg = registryFor(deps.config, now, '_restart');
    reconcile(state, reg);
    const run = getRun(state, runId);
    if (!run || !run.restart_policy) return { done: 'no restart policy' };
    if (run.ended_at === null) return { done: 'still running' };
    if (run.restart_status === null || run.restart_status === undefined) decideOnce(state, run, reg);
    const cur = getRun(state, runId)!;
    if (cur.restart_status !== 'waiting') return { done: cur.restart_status ?? 'done' };
    if ((cur.restart_at ?? 0) > now) return { sleepMs: cur.restart_at! - now, why: 'backoff' };
    return cur;
  });
  if (!('id' in due)) return due;
  if (!o.admit) return { sleepMs: RESTART_POLL_MS, why: 'config_broken' };
  return admitAgain(deps, due);
}

/** Decide what follows a run's end, once: wait for a restart, give up into the DLQ, or end. */
function decideOnce(state: State, run: RunRow, reg: RegistryDeps): void {
  const d = restartDecision({
    policy: run.restart_policy as 'on-failure' | 'always',
    state: run.state,
    failure: run.failure,
    exitCode: run.exit_code,
    signal: run.signal,
    retries: run.restart_retries ?? null,
    failuresBefore: run.restart_failures ?? 0,
    health: getHealth(state, run.name),
    startedAt: run.started_at,
    endedAt: run.ended_at!,
    now: reg.now,
    minUptimeMs: reg.minUptimeMs,
  });
  const set = state.db.prepare('UPDATE runs SET restart_status = ?, restart_at = ? WHERE id = ? AND restart_status IS NULL');
  switch (d.action) {
    case 'restart':
      set.run('waiting', d.at, run.id);
      state.event(
        { command: '_restart', kind: 'restart.waiting', subject: run.name, reason: `${run.id} ${d.why}: restarting at ${new Date(d.at).toISOString()}`, data: { run_id: run.id, restart_at: d.at } },
        reg.now,
      );
      return;
    case 'give_up':
      set.run('gave_up', null, run.id);
      if (d.dlq) addToDlq(state, run, { failure: run.failure, error: d.reason, restarts: run.restart_attempt ?? 0, exitCode: run.exit_code, signal: run.signal }, reg.now, '_restart');
      state.event({ command: '_restart', kind: 'restart.gave_up', subject: run.name, reason: `${run.id}: ${d.reason}`, data: { run_id: run.id } }, reg.now);
      return;
    case 'end':
      set.run(d.status, null, run.id);
      state.event({ command: '_restart', kind: 'restart.ended', subject: run.name, reason: `${run.id}: ${d.reason}`, data: { run_id: run.id } }, reg.now);
  }
}

/** A run's terms as a restart or a dead-letter retry starts it again with (SpawnRequest's fields). */
export interface StoredTerms {
  readonly max: number | undefined;
  readonly requires: readonly string[];
  readonly ports: number | undefined;
  readonly env: string | undefined;
  readonly killGraceMs: number;
  readonly limits: SpawnRequest['limits'];
  readonly timeoutMs: number | undefined;
}

const whole = (x: unknown, lo: number, hi: number): boolean => Number.isSafeInteger(x) && (x as number) >= lo && (x as number) <= hi;
const wholeOrNull = (x: unknown, lo: number, hi: number): boolean => x === null || x === undefined || whole(x, lo, hi);

/**
 * A run's terms read back (a row's restart_spec, limits and timeout; a dead-letter entry's
 * context), checked against what spawn's flags accept, or what is wrong with them. The limits
 * reach a shell (the ulimit prefix) and the caps decide admission: values someone else wrote
 * must get no further than the flags could. `spec` absent (a run without --restart): no cap,
 * requirement, ports or environment of its own, and the given kill grace.
 */
export function storedTerms(spec: unknown, limits: unknown, timeoutMs: unknown, defaultGraceMs: number): StoredTerms | string {
  const sp = (spec ?? { max: null, requires: [], ports: null, env: null, kill_grace_ms: defaultGraceMs }) as Record<string, unknown>;
  if (typeof sp !== 'object' || Array.isArray(sp)) return 'terms that are not an object';
  const requires = sp.requires;
  if (!Array.isArray(requires) || !requires.every((n) => typeof n === 'string' && NAME_RE.test(n))) return 'a requirement that is not a name';
  if (sp.env !== null && sp.env !== undefined && !(typeof sp.env === 'string' && NAME_RE.test(sp.env))) return 'an environment that is not a name';
  if (!wholeOrNull(sp.max, 1, 10_000) || !wholeOrNull(sp.ports, 1, 100) || !whole(sp.kill_grace_ms, 0, 86_400_000)) return 'terms out of range';
  if (!wholeOrNull(timeoutMs, 1, 366 * 86_400_000)) return `timeout ${String(timeoutMs)}`;
  const l = (limits ?? {}) as Record<string, unknown>;
  if (typeof l !== 'object' || Array.isArray(l)) return 'limits that are not an object';
  if (Object.keys(l).some((k) => !['memoryMax', 'cpuTimeSec', 'nice'].includes(k))) return 'an unknown limit';
  if (!wholeOrNull(l.memoryMax, 1, Number.MAX_SAFE_INTEGER) || !wholeOrNull(l.cpuTimeSec, 1, 366 * 86_400) || !wholeOrNull(l.nice, 0, 19)) return 'limits out of range';
  const num = (x: unknown) => (x === null || x === undefined ? undefined : (x as number));
  return {
    max: num(sp.max),
    requires: requires as string[],
    ports: num(sp.ports),
    env: typeof sp.env === 'string' ? sp.env : undefined,
    killGraceMs: sp.kill_grace_ms as number,
    limits: { memoryMax: num(l.memoryMax), cpuTimeSec: num(l.cpuTimeSec), nice: num(l.nice) },
    timeoutMs: num(timeoutMs),
  };
}

/** The terms a restart is admitted on, read back from the row (and checked: who else could have written it?). */
function restartRequest(run: RunRow): SpawnRequest | string {
  let spec: unknown;
  let command: unknown;
  let limits: unknown;
  try {
    spec = JSON.parse(run.restart_spec ?? '');
    command = JSON.parse(run.command);
    limits = JSON.parse(run.limits ?? '{}');
  } catch {
    return 'its row is damaged';
  }
  if (![run.name, run.grp].every((n) => NAME_RE.test(n)) || !isAbsolute(run.cwd)) return 'its row names something agentctl never records';
  if (!Array.isArray(command) || !command.length || !command.every((a) => typeof a === 'string')) return 'its row has no command';
  if (!whole(run.priority, 1, 3)) return `its row holds priority ${String(run.priority)}, which agentctl never records`;
  const terms = storedTerms(spec ?? {}, limits, run.timeout_ms, 0);
  if (typeof terms === 'string') return `its row holds ${terms}, which agentctl never records`;
  return {
    name: run.name,
    group: run.grp,
    priority: run.priority,
    ...terms,
    ifNotRunning: false,
    detach: true,
    command,
    cwd: run.cwd,
    restart: {
      policy: run.restart_policy as 'on-failure' | 'always',
      retries: run.restart_retries ?? null,
      attempt: (run.restart_attempt ?? 0) + 1,
      failures: run.state === 'failed' ? (run.restart_failures ?? 0) + 1 : 0,
      from: run.id,
    },
  };
}

/** The restart's time has come: ask admission as `spawn -d` does; refused, wait (caps) or give up (breaker). */
async function admitAgain(deps: SpawnDeps, run: RunRow): Promise<RestartReply> {
  const { state } = deps;
  const req = restartRequest(run);
  if (typeof req === 'string') return giveUp(deps, run, `cannot restart: ${req}`, true);
  let result;
  try {
    result = await spawnRun(deps, req);
  } catch (err) {
    if (err instanceof RestartCancelled) return { done: 'stopped' };
    throw err;
  }
  if (result.outcome === 'started') return { done: `restarted as ${result.runId}` };
  if (result.outcome !== 'refused') return end(state, run, 'done', 'another run of the name is running');
  const d = result.decision;
  if (d.reason === 'already_running') return end(state, run, 'done', `another run of the name is running (${d.runId ?? '?'})`);
  if (d.reason === 'breaker_open') return giveUp(deps, run, `restart refused: ${d.message}`, true);
  // a full cap, a backoff, a cooldown, a dependency down: wait and ask again, never around it
  const now = deps.now();
  const at = d.retryAt !== undefined && d.retryAt > now ? d.retryAt : now + RESTART_POLL_MS;
  const waiting = state.write(() => state.db.prepare("UPDATE runs SET restart_at = ? WHERE id = ? AND restart_status = 'waiting'").run(at, run.id).changes);
  if (!waiting) return { done: 'stopped' };
  return { sleepMs: at - now, why: d.reason };
}

function giveUp(deps: SpawnDeps, run: RunRow, reason: string, dlq: boolean): RestartReply {
  const { state } = deps;
  state.write(() => {
    const changed = state.db.prepare("UPDATE runs SET restart_status = 'gave_up', restart_at = NULL WHERE id = ? AND restart_status = 'waiting'").run(run.id).changes;
    if (!changed) return;
    if (dlq) addToDlq(state, run, { failure: run.failure, error: reason, restarts: run.restart_attempt ?? 0, exitCode: run.exit_code, signal: run.signal }, deps.now(), '_restart');
    state.event({ command: '_restart', kind: 'restart.gave_up', subject: run.name, reason: `${run.id}: ${reason}`, data: { run_id: run.id } });
  });
  return { done: 'gave up' };
}

function end(state: State, run: RunRow, status: 'done', reason: string): RestartReply {
  state.write(() => {
    if (state.db.prepare("UPDATE runs SET restart_status = ?, restart_at = NULL WHERE id = ? AND restart_status = 'waiting'").run(status, run.id).changes)
      state.event({ command: '_restart', kind: 'restart.ended', subject: run.name, reason: `${run.id}: ${reason}`, data: { run_id: run.id } });
  });
  return { done: reason };
}
