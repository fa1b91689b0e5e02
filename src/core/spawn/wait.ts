/**
 * Waiting for admission: ask (attempt.ts), and with --wait ask again until admitted or out
 * of time. A waiter that could take the next free slot listens for the slot bell (bell.ts)
 * and asks at once when it rings; the rest poll, slower the further back they are. The host
 * is sampled again (throttle, agents) at most once a second.
 */
import { BellListener, bellPath } from '../bell.js';
import { type AgentCandidate, agentCandidates } from '../hostcap.js';
import { getIdentity } from '../identity.js';
import { listeningPorts } from '../ports/leases.js';
import type { Refusal } from './admission.js';
import { attempt } from './attempt.js';
import type { SpawnDeps, SpawnRequest, ThrottleCap } from './deps.js';
import { fleetAdmit, FleetWait } from './fleet.js';
import type { LimitMechanism } from './launch.js';
import type { Progress } from '../ctx.js';
import { elapsedSince, spawnWaitText } from '../progress.js';
import { leaveQueue } from './record.js';
import type { SpawnResult } from './result.js';

/** At most this many waiters of a group ask at the fast rate: each ask is a write transaction. */
export const FAST_POLLERS = 4;

/** How often a waiter that hears the slot bell still asks, for ends that ring no bell. */
export const BELL_POLL_MS = 100;

/** A sample of the host this old is taken again before the next ask. */
const HOST_RESAMPLE_MS = 1000;

/** A waiter asks at least this often, whatever its retry time or place says. */
const LONGEST_PAUSE_MS = 1000;

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

/** What admission counts of the host outside its transaction: the throttle's cap and the agents running. */
export interface HostSample {
  readonly throttle: ThrottleCap;
  readonly agents: readonly AgentCandidate[];
  readonly at: number;
}

export async function sampleHost(deps: SpawnDeps): Promise<HostSample> {
  const throttle = await deps.throttle();
  const agents = agentCandidates(await deps.listProcesses(), deps.config.config.agents);
  return { throttle, agents, at: deps.now() };
}

/** An admitted run, before it starts. */
export interface Admitted {
  readonly runId: string;
  readonly trial: boolean;
  /** the environment's ports, then the run's own (not yet proven free) */
  readonly ports: readonly number[];
}

/**
 * Ask until admitted; or the answer that ends the call: a refusal (at once without --wait,
 * for good, or when --wait runs out), or already running under --if-not-running.
 */
export async function admitOrWait(
  deps: SpawnDeps,
  req: SpawnRequest,
  from: { started: number; host: HostSample; mechanism: LimitMechanism },
): Promise<Admitted | Extract<SpawnResult, { outcome: 'refused' | 'already_running' }>> {
  const { state } = deps;
  const self = getIdentity(process.pid) ?? { pid: process.pid, startTime: '0', bootId: 'unknown' };
  const waiting = req.waitMs !== undefined;
  let host = from.host;
  let queueId: number | undefined;
  // waiters that could take the next free slot listen for the slot bell (bell.ts)
  let bell: BellListener | undefined;
  // the status line (deps.progress), from the first refusal it waits out
  let progress: Progress | undefined;
  let tail: ((ms: number) => string) | undefined;
  let fleetWait: FleetWait | undefined;
  const show = (d: Refusal, ahead: number) => {
    if (!progress) {
      progress = deps.progress?.();
      tail = elapsedSince(deps.now() - from.started); // the line counts the whole wait
    }
    progress?.update(spawnWaitText(req, d, ahead, deps.now()), tail);
  };
  try {
    for (;;) {
      const a = attempt(deps, {
        req,
        throttle: host.throttle,
        agents: host.agents,
        self,
        queueId,
        waiting,
        listening: req.ports ? listeningPorts() : new Set(),
        mechanism: from.mechanism,
        command: deps.command,
      });
      queueId = a.queueId;
      const d = a.decision;
      if (d.admit) {
        // a fleet-capped group also needs its fleet lease; refused, the local slot is back (fleet.ts)
        const fleet = await fleetAdmit(deps, req, a.runId!, self, waiting);
        if (!fleet) return { runId: a.runId!, trial: d.trial, ports: a.ports ?? [] };
        const waited = deps.now() - from.started;
        if (!waiting || waited >= req.waitMs) return gaveUp(deps, req, fleet, waited);
        show(fleet, 0);
        await (fleetWait ??= new FleetWait(deps, req)).pause(req.waitMs - waited);
        continue;
      }
      if (d.reason === 'already_running' && req.ifNotRunning) return { outcome: 'already_running', runId: d.runId!, pid: d.pid ?? null };
      const waited = deps.now() - from.started;
      if (!waiting || d.exitCode === 69 || d.reason === 'already_running' || waited >= req.waitMs) {
        leaveQueue(state, queueId);
        return gaveUp(deps, req, d, waited);
      }
      show(d, a.ahead);
      const candidate = d.retryAt === undefined && couldTakeNextSlot(a.ahead, d.slot?.limit);
      if (candidate) bell ??= new BellListener(bellPath(state));
      await pause(deps, d, a.ahead, req.waitMs - waited, candidate ? bell : undefined);
      // the host changes while we wait: sample again now and then
      if (deps.now() - host.at > HOST_RESAMPLE_MS) host = await sampleHost(deps);
    }
  } finally {
    progress?.done();
    bell?.close();
    fleetWait?.close();
  }
}

/** The refusal that ends the call; a --wait that ran out is an event. */
function gaveUp(deps: SpawnDeps, req: SpawnRequest, d: Refusal, waited: number): Extract<SpawnResult, { outcome: 'refused' }> {
  const { state } = deps;
  if (req.waitMs !== undefined && waited >= req.waitMs) {
    state.write(() =>
      state.event({ command: deps.command ?? 'spawn', kind: 'spawn.wait_timeout', subject: req.name, reason: `gave up after ${Math.round(waited / 1000)}s: ${d.message}`, data: { reason: d.reason } }),
    );
  }
  return { outcome: 'refused', decision: d, waitedMs: waited };
}

/** Sleep until the refusal's retry time, the next poll, or the bell (for a waiter that listens), within what is left of --wait. */
async function pause(deps: SpawnDeps, d: Refusal, ahead: number, remaining: number, bell: BellListener | undefined): Promise<void> {
  const until = d.retryAt !== undefined ? Math.max(0, d.retryAt - deps.now()) : pollDelay(ahead, d.slot?.limit, Math.random, bell?.watching === true);
  const ms = Math.max(5, Math.min(remaining, until, LONGEST_PAUSE_MS));
  await (bell ? bell.wait(ms) : deps.sleep(ms));
}
