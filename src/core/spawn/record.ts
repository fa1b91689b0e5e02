/**
 * Writing what admission decided, in the same transaction: an admitted run's row (state
 * `starting`, so the next caller counts it), its port leases and its event; for a refusal,
 * a waiter's place in the queue and the refusal's event. Also a waiter leaving the queue.
 */
import { ringAfterCommit } from '../bell.js';
import type { LoadedConfig } from '../config/types.js';
import { leasePorts, leasesOf } from '../ports/leases.js';
import { newRunId } from '../runs/registry.js';
import type { State } from '../state.js';
import { redactArgv } from '../text.js';
import type { AdmissionFacts, Decision, Refusal } from './admission.js';
import type { SpawnRequest } from './deps.js';
import type { AttemptInput, Gathered } from './facts.js';

/** What one attempt came to: the decision, the run it admitted, and the caller's place in the queue. */
export interface Attempt {
  readonly decision: Decision;
  readonly runId?: string;
  /** the environment's ports, then the run's own */
  readonly ports?: number[];
  readonly queueId?: number;
  /** waiters ahead of the caller in the queue of the cap that holds it */
  readonly ahead: number;
}

type Admit = Extract<Decision, { admit: true }>;

export function recordAttempt(state: State, config: LoadedConfig, input: AttemptInput, gathered: Gathered, decision: Decision, now: number): Attempt {
  const del = state.db.prepare('DELETE FROM queue WHERE id = ?');
  for (const id of gathered.deadWaiters) del.run(id);
  return decision.admit ? recordAdmission(state, config, input, gathered.facts, decision, now) : recordRefusal(state, input, gathered.facts, decision, now);
}

function recordAdmission(state: State, config: LoadedConfig, input: AttemptInput, facts: AdmissionFacts, decision: Admit, now: number): Attempt {
  const { req, self, queueId } = input;
  const envPorts = req.env !== undefined ? leasesOf(state, { kind: 'env', id: req.env }) : [];
  const runId = newRunId(now);
  let runPorts: number[] = [];
  if (req.ports) {
    // decide saw enough free ports in this transaction, with the same listening set
    const got = leasePorts(state, config.config.ports, req.ports, { kind: 'run', id: runId }, input.listening, now);
    if (!got) throw new Error(`admission: ${req.ports} ports were free for ${req.name}, but the lease found too few`);
    runPorts = got;
  }
  state.db
    .prepare(
      `INSERT INTO runs (id, name, grp, priority, mode, state, command, cwd, config_hash, timeout_ms, started_at, sup_pid, sup_start_time, limits, limit_mechanism)
       VALUES (?, ?, ?, ?, ?, 'starting', ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    .run(
      runId,
      req.name,
      req.group,
      req.priority,
      req.detach ? 'detached' : req.batch ? 'batch' : 'foreground',
      JSON.stringify(redactArgv(req.command)),
      req.cwd,
      config.hash,
      req.timeoutMs ?? null,
      now,
      self.pid,
      self.startTime,
      JSON.stringify(req.limits),
      input.mechanism,
    );
  if (envPorts.length || runPorts.length) state.db.prepare('UPDATE runs SET ports = ? WHERE id = ?').run(JSON.stringify([...envPorts, ...runPorts]), runId);
  if (req.restart) recordRestart(state, req, runId);
  if (queueId !== undefined) state.db.prepare('DELETE FROM queue WHERE id = ?').run(queueId);
  const host = `host ${decision.host.used} ${Number.isFinite(decision.host.limit) ? `of ${decision.host.limit}` : '(no cap)'} agents`;
  const group = req.max !== undefined ? `, group ${decision.slot.kind === 'group' ? decision.slot.used : facts.cap.managed + 1} of ${req.max}` : '';
  state.event(
    {
      command: input.command ?? 'spawn',
      kind: decision.trial ? 'spawn.trial' : 'spawn.admitted',
      subject: req.name,
      reason: `${runId} admitted in group ${req.group}: ${host}${group}${decision.trial ? ' (half-open breaker: trial run)' : ''}`,
      data: {
        run_id: runId,
        group: req.group,
        priority: req.priority,
        used: decision.slot.used,
        limit: decision.slot.limit,
        limit_kind: decision.slot.kind,
        host_used: decision.host.used,
        host_limit: decision.host.limit,
      },
    },
    now,
  );
  return { decision, runId, ahead: facts.ahead, ports: [...envPorts, ...runPorts] };
}

/** A `stop` ended the restart policy while its supervisor asked admission: the restart is not admitted. */
export class RestartCancelled extends Error {}

/**
 * A run under a restart policy: its terms, and the terms a restart is admitted on again. A
 * restart is admitted only while the run it restarts still waits for it, in the admission's
 * transaction: a `stop` that ended the policy first leaves nothing started (RestartCancelled
 * rolls the admission back).
 */
function recordRestart(state: State, req: SpawnRequest, runId: string): void {
  const r = req.restart!;
  if (r.from !== undefined) {
    const claimed = state.db.prepare("UPDATE runs SET restart_status = 'restarted', restart_next = ?, restart_at = NULL WHERE id = ? AND restart_status = 'waiting'").run(runId, r.from).changes;
    if (!claimed) throw new RestartCancelled(`the restart of ${r.from} was ended meanwhile`);
  }
  const spec = { max: req.max ?? null, requires: req.requires, ports: req.ports ?? null, env: req.env ?? null, kill_grace_ms: req.killGraceMs };
  state.db
    .prepare('UPDATE runs SET restart_policy = ?, restart_retries = ?, restart_attempt = ?, restart_failures = ?, restart_spec = ? WHERE id = ?')
    .run(r.policy, r.retries, r.attempt, r.failures, JSON.stringify(spec), runId);
}

function recordRefusal(state: State, input: AttemptInput, facts: AdmissionFacts, d: Refusal, now: number): Attempt {
  const { req, self, waiting } = input;
  let qid = input.queueId;
  // only a caller waiting for a slot takes a place in the host's queue: one held back by its
  // name's backoff or cooldown would otherwise hold a slot it cannot use for minutes
  if (waiting && d.reason === 'no_slot' && qid === undefined) {
    qid = Number(
      state.db
        .prepare('INSERT INTO queue (name, grp, priority, max, pid, start_time, boot_id, enqueued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
        .run(req.name, req.group, req.priority, req.max ?? null, self.pid, self.startTime, self.bootId, now).lastInsertRowid,
    );
    state.event({ command: input.command ?? 'spawn', kind: 'spawn.queued', subject: req.name, reason: `waiting: ${d.message}`, data: { reason: d.reason, priority: req.priority } }, now);
  }
  // a refusal that ends the call is an event; a waiter's repeated polls are not, nor a waiting
  // restart's (its supervisor asks again every few seconds while a cap is full: core/restart.ts)
  if ((!waiting && !req.restart) || d.exitCode === 69 || d.reason === 'already_running') {
    state.event(
      {
        command: input.command ?? 'spawn',
        kind: 'spawn.refused',
        subject: req.name,
        reason: d.message,
        data: { reason: d.reason, exit_code: d.exitCode, ...(d.slot ? { limit_kind: d.slot.kind, used: d.slot.used, limit: d.slot.limit } : {}) },
      },
      now,
    );
  }
  // a waiter's place is counted in the queue of the cap that holds it
  return { decision: d, ahead: d.slot?.kind === 'host' ? facts.hostAhead : facts.ahead, ...(qid !== undefined ? { queueId: qid } : {}) };
}

/** A waiter gives up its place (admitted elsewhere, refused for good, or out of time). */
export function leaveQueue(state: State, queueId: number | undefined): void {
  if (queueId === undefined) return;
  state.write(() => {
    state.db.prepare('DELETE FROM queue WHERE id = ?').run(queueId);
    // the waiters behind move up a place
    ringAfterCommit(state);
  });
}
