/**
 * spawn: admit (one IMMEDIATE transaction), start, supervise. Admission reconciles the
 * registry first, so a slot held by a dead process is free again before anyone counts it.
 */
import { spawn as spawnChild } from 'node:child_process';
import { closeSync, lstatSync, readdirSync, rmSync } from 'node:fs';
import { ensurePrivateDir } from '../fsutil.js';
import { constants } from 'node:os';
import { join } from 'node:path';
import { getIdentity, isSameProcess, type ProcessIdentity } from '../identity.js';
import { endTree, signalProcess } from '../kill.js';
import { type AgentCandidate, agentCandidates, notRuns } from '../hostcap.js';
import type { State } from '../state.js';
import { redactArgv } from '../text.js';
import { decide, type Decision, type EnvFacts, type HostBreaker, type PortFacts, portsTakenRefusal, type Refusal } from './admission.js';
import type { SpawnDeps, SpawnRequest, ThrottleCap } from './deps.js';
import type { SpawnResult } from './result.js';
import { gcReason, getEnv } from '../envs.js';
import { leasePorts, leasesOf, leaseVerified, listeningPorts } from '../ports.js';
import { exhaustedMessage } from '../pool.js';
import { BellListener, bellPath, ringAfterCommit } from '../bell.js';
import { type LimitMechanism, limitPrefix, startDetached } from './launch.js';
import { modeAt } from '../policy.js';
import { childFile, exitFile, logFile, runDir, timeoutMarker, writePidFile } from '../runs/files.js';
import { finishRun } from '../runs/end.js';
import { getHealth, HOST_BREAKER_KEY } from '../runs/health.js';
import { getRun, liveRuns, newRunId, type RegistryDeps, type RunRow } from '../runs/registry.js';
import { reconcile, registryFor } from '../runs/reconcile.js';
import { openLogForAppend } from '../safefs.js';

/** At most this many waiters of a group ask at the fast rate: each ask is a write transaction. */
export const FAST_POLLERS = 4;

/** How often a waiter that hears the slot bell still asks, for ends that ring no bell. */
export const BELL_POLL_MS = 100;

/** Could this waiter take a slot the moment one frees? (see pollDelay) */
export function couldTakeNextSlot(ahead: number, limit: number | undefined): boolean {
  return ahead < fastPollers(limit);
}

const fastPollers = (limit: number | undefined) => (limit !== undefined && Number.isFinite(limit) ? Math.max(1, Math.min(limit, FAST_POLLERS)) : 1);

/**
 * How long a waiter sleeps before asking again. A waiter that could take a slot the moment one
 * frees (fewer waiters ahead than the group's limit, and among the first FAST_POLLERS) asks
 * every 20-30 ms, or every BELL_POLL_MS when it hears the slot bell; the rest back off by 30 ms
 * per place further back, up to 500 ms. Keying this to the head alone made the second and
 * third waiters of a 3-slot group wait 50-80 ms for slots that freed together.
 */
export function pollDelay(ahead: number, limit: number | undefined, random = Math.random, hearsBell = false): number {
  const behind = Math.max(0, ahead - fastPollers(limit) + 1);
  // one that hears the bell is woken when a slot frees: its own asking is only the fallback
  if (behind === 0 && hearsBell) return BELL_POLL_MS + Math.floor(random() * 10);
  return Math.min(500, 20 + 30 * behind) + Math.floor(random() * 10);
}

function registryDeps(deps: SpawnDeps, now: number): RegistryDeps {
  return registryFor(deps.config, now, 'spawn');
}

interface Attempt {
  decision: Decision;
  runId?: string;
  ports?: number[];
  queueId?: number;
  ahead: number;
}

function attempt(deps: SpawnDeps, req: SpawnRequest, throttle: ThrottleCap, agents: readonly AgentCandidate[], self: ProcessIdentity, queueId: number | undefined, waiting: boolean, listening: Set<number>, mechanism: LimitMechanism): Attempt {
  const { state } = deps;
  const cfg = deps.config.config;
  return state.write(() => {
    const now = deps.now();
    reconcile(state, registryDeps(deps, now));
    const live = liveRuns(state);
    const aliveRun = live.find((r) => r.name === req.name);
    const last = (sql: string, ...args: unknown[]) => (state.db.prepare(sql).get(...args) as { t: number | null }).t ?? undefined;
    const lastStartOfName = last('SELECT MAX(started_at) AS t FROM runs WHERE name = ?', req.name);
    const lastStartAny = last('SELECT MAX(started_at) AS t FROM runs');
    const requires = req.requires.map((n) => {
      const r = live.find((x) => x.name === n);
      if (!r) return { name: n, problem: 'not running' };
      if (r.state !== 'running') return { name: n, problem: r.state };
      const h = getHealth(state, n);
      if (modeAt(h, now) !== 'closed') return { name: n, problem: `circuit ${modeAt(h, now).replace('_', '-')}` };
      if (h.consecutiveFailures > 0) return { name: n, problem: `failing: ${h.reason ?? h.lastFailure}` };
      return { name: n, problem: null };
    });
    const unmanaged = cfg.spawn.countUnmanaged ? notRuns(agents, live).length : 0;

    // the host's queue: drop waiters that died, then count the live ones ahead of us (higher
    // priority, or the same priority and queued earlier; everyone, for a caller not queued):
    // those of our group for the group's cap, and those of any group whose group has room
    // for the host's cap (a waiter held by its own --max cannot take a host slot)
    const rows = state.db.prepare('SELECT id, grp, priority, max, pid, start_time, boot_id FROM queue ORDER BY priority, id').all() as Array<{ id: number; grp: string; priority: number; max: number | null; pid: number; start_time: string; boot_id: string }>;
    const queued = rows.filter((q) => {
      if (q.id === queueId) return true;
      if (isSameProcess({ pid: q.pid, startTime: q.start_time, bootId: q.boot_id })) return true;
      state.db.prepare('DELETE FROM queue WHERE id = ?').run(q.id);
      return false;
    });
    const inGroup = new Map<string, number>();
    for (const r of live) inGroup.set(r.grp, (inGroup.get(r.grp) ?? 0) + 1);
    const before = queueId === undefined ? queued : queued.filter((q) => q.id !== queueId && (q.priority < req.priority || (q.priority === req.priority && q.id < queueId)));
    const ahead = before.filter((q) => q.grp === req.group).length;
    const hostAhead = before.filter((q) => q.max === null || (inGroup.get(q.grp) ?? 0) < q.max).length;

    const decision = decide({
      now,
      name: req.name,
      group: req.group,
      health: getHealth(state, req.name),
      alive: aliveRun ? { runId: aliveRun.id, pid: aliveRun.pid } : undefined,
      lastStartOfName,
      cooldownMs: cfg.spawn.cooldownMs,
      lastStartAny,
      minIntervalMs: cfg.spawn.minIntervalMs,
      requires,
      // AGENTCTL_DISABLE_THROTTLE turns the resource-based cap off (maxAgents Infinity); --max still holds
      cap: { max: req.max, levelMax: throttle.maxAgents, level: throttle.level, managed: inGroup.get(req.group) ?? 0, hostManaged: live.length, unmanaged },
      ahead,
      hostAhead,
      hostBreaker: state.getKv<HostBreaker>(HOST_BREAKER_KEY)?.value,
      env: req.env !== undefined ? envFacts(state, req.env, now) : undefined,
      ports: req.ports ? portFacts(state, cfg.ports, req.ports, listening, now) : undefined,
    });

    // a refusal that ends the call is an event; a waiter's repeated polls are not
    const refuse = (d: Refusal, qid: number | undefined): Attempt => {
      if (!waiting || d.exitCode === 69 || d.reason === 'already_running') {
        state.event({ command: 'spawn', kind: 'spawn.refused', subject: req.name, reason: d.message, data: { reason: d.reason, exit_code: d.exitCode, ...(d.slot ? { limit_kind: d.slot.kind, used: d.slot.used, limit: d.slot.limit } : {}) } }, now);
      }
      // a waiter's place is counted in the queue of the cap that holds it
      return { decision: d, ahead: d.slot?.kind === 'host' ? hostAhead : ahead, ...(qid !== undefined ? { queueId: qid } : {}) };
    };

    const envPorts = decision.admit && req.env !== undefined ? leasesOf(state, { kind: 'env', id: req.env }) : [];
    const runId = decision.admit ? newRunId(now) : '';
    let runPorts: number[] = [];
    if (decision.admit && req.ports) {
      // decide saw enough free ports in this transaction, with the same listening set
      const got = leasePorts(state, cfg.ports, req.ports, { kind: 'run', id: runId }, listening, now);
      if (!got) throw new Error(`admission: ${req.ports} ports were free for ${req.name}, but the lease found too few`);
      runPorts = got;
    }

    if (decision.admit) {
      state.db
        .prepare(
          `INSERT INTO runs (id, name, grp, priority, mode, state, command, cwd, config_hash, timeout_ms, started_at, sup_pid, sup_start_time, limits, limit_mechanism)
           VALUES (?, ?, ?, ?, ?, 'starting', ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(runId, req.name, req.group, req.priority, req.detach ? 'detached' : 'foreground', JSON.stringify(redactArgv(req.command)), req.cwd, deps.config.hash, req.timeoutMs ?? null, now, self.pid, self.startTime, JSON.stringify(req.limits), mechanism);
      if (envPorts.length || runPorts.length) state.db.prepare('UPDATE runs SET ports = ? WHERE id = ?').run(JSON.stringify([...envPorts, ...runPorts]), runId);
      if (queueId !== undefined) state.db.prepare('DELETE FROM queue WHERE id = ?').run(queueId);
      state.event({
        command: 'spawn',
        kind: decision.trial ? 'spawn.trial' : 'spawn.admitted',
        subject: req.name,
        reason: `${runId} admitted in group ${req.group}: host ${decision.host.used} ${Number.isFinite(decision.host.limit) ? `of ${decision.host.limit}` : '(no cap)'} agents${req.max !== undefined ? `, group ${decision.slot.kind === 'group' ? decision.slot.used : (inGroup.get(req.group) ?? 0) + 1} of ${req.max}` : ''}${decision.trial ? ' (half-open breaker: trial run)' : ''}`,
        data: { run_id: runId, group: req.group, priority: req.priority, used: decision.slot.used, limit: decision.slot.limit, limit_kind: decision.slot.kind, host_used: decision.host.used, host_limit: decision.host.limit },
      }, now);
      return { decision, runId, ahead, ports: [...envPorts, ...runPorts] };
    }
    let qid = queueId;
    // only a caller waiting for a slot takes a place in the host's queue: one held back by its
    // name's backoff or cooldown would otherwise hold a slot it cannot use for minutes
    if (waiting && decision.reason === 'no_slot' && qid === undefined) {
      qid = Number(
        state.db
          .prepare('INSERT INTO queue (name, grp, priority, max, pid, start_time, boot_id, enqueued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
          .run(req.name, req.group, req.priority, req.max ?? null, self.pid, self.startTime, self.bootId, now).lastInsertRowid,
      );
      state.event({ command: 'spawn', kind: 'spawn.queued', subject: req.name, reason: `waiting: ${decision.message}`, data: { reason: decision.reason, priority: req.priority } }, now);
    }
    return refuse(decision, qid);
  });
}

function envFacts(state: State, name: string, now: number): EnvFacts {
  const e = getEnv(state, name);
  return { name, exists: e !== undefined, gcDue: e ? gcReason(e, now) : undefined };
}

/** Free ports for a lease of `want`, counted the way leasePorts takes them (up to `want`). */
function portFacts(state: State, range: { from: number; to: number }, want: number, listening: ReadonlySet<number>, now: number): PortFacts {
  const leased = new Set((state.db.prepare('SELECT port FROM port_leases WHERE port BETWEEN ? AND ?').all(range.from, range.to) as Array<{ port: number }>).map((r) => r.port));
  let free = 0;
  for (let p = range.from; p <= range.to && free < want; p++) if (!leased.has(p) && !listening.has(p)) free++;
  return { want, free, exhausted: free < want ? exhaustedMessage(state, range, want, now) : undefined };
}

function leaveQueue(state: State, queueId: number | undefined): void {
  if (queueId === undefined) return;
  state.write(() => {
    state.db.prepare('DELETE FROM queue WHERE id = ?').run(queueId);
    // the waiters behind move up a place
    ringAfterCommit(state);
  });
}

/** Keep the newest `keep` logs of a name (and their .prev halves); older ones go. */
function pruneLogs(dir: string, name: string, keep: number): void {
  // <name>.<run id>.log exactly: a prefix match would take worker.v2's logs for worker's
  const mineRe = new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.r[0-9a-z]+\\.log$`);
  try {
    const mine = readdirSync(dir)
      .filter((f) => mineRe.test(f))
      .map((f) => ({ f, t: lstatSync(join(dir, f)).mtimeMs }))
      .sort((a, b) => b.t - a.t);
    for (const { f } of mine.slice(keep)) {
      rmSync(join(dir, f), { force: true });
      rmSync(join(dir, `${f}.prev`), { force: true });
    }
  } catch {
    /* best effort */
  }
}

export async function spawnRun(deps: SpawnDeps, req: SpawnRequest, childStdoutToStderr = false): Promise<SpawnResult> {
  const { state } = deps;
  const self = getIdentity(process.pid) ?? { pid: process.pid, startTime: '0', bootId: 'unknown' };
  const started = deps.now();
  const waiting = req.waitMs !== undefined;
  let throttle = await deps.throttle();
  let procsAt = deps.now();
  let agents = agentCandidates(await deps.listProcesses(), deps.config.config.agents);
  let queueId: number | undefined;
  let a: Attempt;
  // how limits are enforced is known before admission, so the run row records it from the start
  const { prefix, mechanism } = limitPrefix(req.limits, deps.env);
  // waiters that could take the next free slot listen for the slot bell (bell.ts)
  let bell: BellListener | undefined;
  try {
    for (;;) {
      a = attempt(deps, req, throttle, agents, self, queueId, waiting, req.ports ? listeningPorts() : new Set(), mechanism);
      queueId = a.queueId;
      if (a.decision.admit) break;
      const d = a.decision;
      if (d.reason === 'already_running' && req.ifNotRunning) return { outcome: 'already_running', runId: d.runId!, pid: d.pid ?? null };
      const waited = deps.now() - started;
      if (!waiting || d.exitCode === 69 || d.reason === 'already_running' || waited >= req.waitMs!) {
        leaveQueue(state, queueId);
        if (waiting && waited >= req.waitMs!) {
          state.write(() => state.event({ command: 'spawn', kind: 'spawn.wait_timeout', subject: req.name, reason: `gave up after ${Math.round(waited / 1000)}s: ${d.message}`, data: { reason: d.reason } }));
        }
        return { outcome: 'refused', decision: d, waitedMs: waited };
      }
      const remaining = req.waitMs! - waited;
      const candidate = d.retryAt === undefined && couldTakeNextSlot(a.ahead, d.slot?.limit);
      if (candidate) bell ??= new BellListener(bellPath(state));
      const until = d.retryAt !== undefined ? Math.max(0, d.retryAt - deps.now()) : pollDelay(a.ahead, d.slot?.limit, Math.random, candidate && bell?.watching === true);
      const ms = Math.max(5, Math.min(remaining, until, 1000));
      await (candidate && bell ? bell.wait(ms) : deps.sleep(ms));
      // the host changes while we wait: sample again now and then
      if (deps.now() - procsAt > 1000) {
        throttle = await deps.throttle();
        agents = agentCandidates(await deps.listProcesses(), deps.config.config.agents);
        procsAt = deps.now();
      }
    }
  } finally {
    bell?.close();
  }
  const runId = a.runId!;
  const trial = a.decision.admit && a.decision.trial;
  const waitedMs = deps.now() - started;
  const cfg = deps.config.config;
  const regDepsFor = () => registryDeps(deps, deps.now());
  const argv = [...prefix, ...req.command];
  let ports = a.ports ?? [];
  if (req.ports) {
    // the lease excluded listening ports; now prove ours free by binding them
    const envCount = ports.length - req.ports;
    const own = ports.slice(envCount);
    let first = true;
    const verified = await leaseVerified(state, cfg.ports, { kind: 'run', id: runId }, req.ports, () => (first ? ((first = false), own) : undefined));
    if (!verified) {
      state.write(() => finishRun(state, getRun(state, runId)!, { exitCode: null, signal: null, endedAt: deps.now(), lost: true, why: 'its ports were taken before it started' }, regDepsFor()));
      return { outcome: 'refused', decision: portsTakenRefusal(req.name), waitedMs };
    }
    ports = [...ports.slice(0, envCount), ...verified];
    state.write(() => state.db.prepare('UPDATE runs SET ports = ? WHERE id = ?').run(JSON.stringify(ports), runId));
  }
  const portEnv: Record<string, string> = {};
  if (ports.length) {
    portEnv.PORT = String(ports[0]);
    portEnv.AGENTCTL_PORTS = ports.join(',');
    ports.forEach((p, i) => (portEnv[`PORT_${i + 1}`] = String(p)));
  }
  if (req.env !== undefined) portEnv.AGENTCTL_ENV = req.env;
  const env = { ...deps.env, ...portEnv, AGENTCTL_RUN_ID: runId, AGENTCTL_NAME: req.name };
  const regDeps = regDepsFor;

  if (req.detach) {
    ensurePrivateDir(state.paths.logs);
    ensurePrivateDir(runDir(state));
    const logPath = logFile(state, { id: runId, name: req.name });
    pruneLogs(state.paths.logs, req.name, cfg.spawn.logsPerName - 1);
    let started: { pid: number; supervisorPid: number };
    let logFd: number | undefined;
    try {
      logFd = openLogForAppend(logPath);
      const timeoutSec = req.timeoutMs ? Math.max(1, Math.ceil(req.timeoutMs / 1000)) : 0;
      const watchdog = [deps.selfArgv[0]!, deps.selfArgv[1]!, state.paths.dir, `${req.killGraceMs}ms`] as const;
      // the supervisor's identity is recorded in the step that starts it: a spawner killed
      // from here on leaves a row that reconcile can follow to the child (runFate, adopt)
      const recordSupervisor = (supPid: number) => {
        const sup = getIdentity(supPid);
        if (sup) state.write(() => state.db.prepare('UPDATE runs SET sup_pid = ?, sup_start_time = ? WHERE id = ? AND ended_at IS NULL').run(sup.pid, sup.startTime, runId));
      };
      // the supervisor's own environment has no run id: it hands that to the child only
      // nor the run id of a run this spawn was called from: stopping that run must not take this one
      const { AGENTCTL_RUN_ID: _outer, AGENTCTL_NAME: _outerName, ...supEnv } = deps.env;
      started = await startDetached({ argv, cwd: req.cwd, env: { ...supEnv, ...portEnv }, logFd, exitFile: exitFile(state, runId), timeoutMarker: timeoutMarker(state, runId), childFile: childFile(state, runId), timeoutSec, runId, name: req.name, watchdog, onSupervisor: recordSupervisor });
    } catch (err) {
      state.write(() => finishRun(state, getRun(state, runId)!, { exitCode: 127, signal: null, endedAt: deps.now(), why: `could not start: ${(err as Error).message}` }, regDeps()));
      throw err;
    } finally {
      if (logFd !== undefined) closeSync(logFd);
    }
    const id = getIdentity(started.pid);
    const sup = getIdentity(started.supervisorPid);
    state.write(() => {
      // a run that already ended (its exit recorded by a reconcile meanwhile) stays ended
      const changed = state.db
        .prepare("UPDATE runs SET state = 'running', pid = ?, start_time = ?, boot_id = ?, pgid = ?, sup_pid = ?, sup_start_time = ?, log_path = ? WHERE id = ? AND ended_at IS NULL")
        .run(started.pid, id?.startTime ?? null, id?.bootId ?? null, started.pid, started.supervisorPid, sup?.startTime ?? null, logPath, runId).changes;
      if (id && changed) writePidFile(state, { id: runId, name: req.name, grp: req.group }, id);
    });
    deps.onStart?.({ runId, pid: started.pid });
    return { outcome: 'started', runId, pid: started.pid, name: req.name, logPath, limitMechanism: mechanism, trial, waitedMs, ports };
  }

  // foreground: own process group, signals forwarded, exit code passed through
  // under --json stdout carries our one document, so the child's output goes to stderr
  const child = spawnChild(argv[0]!, argv.slice(1), { cwd: req.cwd, env, stdio: ['inherit', childStdoutToStderr ? 2 : 'inherit', 'inherit'], detached: true });
  const spawnError = await new Promise<Error | undefined>((resolve) => {
    child.once('spawn', () => resolve(undefined));
    child.once('error', (err) => resolve(err));
  });
  if (spawnError) {
    state.write(() => finishRun(state, getRun(state, runId)!, { exitCode: 127, signal: null, endedAt: deps.now(), why: `could not start ${req.command[0]}: ${(spawnError as NodeJS.ErrnoException).code ?? spawnError.message}` }, regDeps()));
    return { outcome: 'finished', runId, pid: 0, name: req.name, exitCode: 127, signal: null, failure: 'startup_error', durationMs: 0, limitMechanism: mechanism, timedOut: false, waitedMs, passThrough: 127 };
  }
  const pid = child.pid!;
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('exit', (code, sig) => resolve([code, sig])));
  const id = getIdentity(pid);
  state.write(() => {
    state.db.prepare("UPDATE runs SET state = 'running', pid = ?, start_time = ?, boot_id = ?, pgid = ? WHERE id = ?").run(pid, id?.startTime ?? null, id?.bootId ?? null, pid, runId);
    if (id) writePidFile(state, { id: runId, name: req.name, grp: req.group }, id);
  });
  deps.onStart?.({ runId, pid });
  let interrupted = false;
  const forward = (sig: NodeJS.Signals) => () => {
    if (id && signalProcess(id, sig, { group: true })) interrupted = true;
  };
  const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((s) => [s, forward(s)] as const);
  for (const [s, h] of handlers) process.on(s, h);
  let timedOut = false;
  const timer =
    req.timeoutMs !== undefined && id
      ? setTimeout(() => {
          timedOut = true;
          void endTree(id, { runId, graceMs: req.killGraceMs });
        }, req.timeoutMs)
      : undefined;
  const [code, sig] = await exited;
  if (timer) clearTimeout(timer);
  for (const [s, h] of handlers) process.removeListener(s, h);
  if (timedOut && id) await endTree(id, { runId, graceMs: 0 }); // sweep what the timeout left
  const endedAt = deps.now();
  const run = getRun(state, runId)!;
  // a signal the operator sent (Ctrl-C, a TERM to agentctl) is a stop, not the worker failing
  const stoppedByUs = interrupted && !timedOut;
  const fin = state.write(() =>
    finishRun(state, run, { exitCode: code, signal: sig, endedAt, timedOut, stoppedByUs, why: timedOut ? `ran past --timeout ${req.timeoutMs}ms` : stoppedByUs ? 'stopped by a forwarded signal' : 'exited in the foreground' }, regDeps()),
  );
  const signum = sig ? (constants.signals[sig] ?? 1) : 0;
  return {
    outcome: 'finished',
    runId,
    pid,
    name: req.name,
    exitCode: code,
    signal: sig,
    failure: fin.failure,
    durationMs: endedAt - run.started_at,
    limitMechanism: mechanism,
    timedOut,
    waitedMs,
    passThrough: code ?? 128 + signum,
  };
}

