/**
 * The fleet step of admission (issue #15): after the host's own transaction admits a run of a
 * fleet-capped group, take its fleet lease in one PostgreSQL transaction. Refused (the fleet is
 * full) or unanswered (fail closed): the local slot is given back as if the attempt never
 * happened, and the refusal is exit 75. With fleet.on_unreachable = "admit", an unanswered
 * fleet admits on the local caps alone, with a warning. Groups without a fleet cap never get here.
 */
import { ringAfterCommit } from '../bell.js';
import { FLEET_RENEWED_KEY, fleetCap, fleetHostId, localLeaseFacts } from '../fleet/fleet.js';
import { FleetListener } from '../fleet/listen.js';
import { releaseLeases, takeLease } from '../fleet/lease.js';
import { FleetUnreachable, withClient } from '../fleet/pg.js';
import type { ProcessIdentity } from '../identity.js';
import type { State } from '../state.js';
import type { FleetCount, Refusal } from './admission.js';
import type { SpawnDeps, SpawnRequest } from './deps.js';

/** A waiter refused by the fleet asks again at least this often: an expired lease rings no bell. */
export const FLEET_POLL_MS = 1000;

export function fleetFullMessage(c: FleetCount): string {
  return `fleet: ${c.used} of ${c.cap} ${c.group} sessions (${c.hosts.map((h) => `${h.host} ${h.n}`).join(', ') || 'no host'})`;
}

/**
 * Take the fleet lease of an admitted run; undefined when it holds one (or needs none), else
 * the refusal, the local slot already given back. A refusal is an event unless the caller waits on.
 */
export async function fleetAdmit(deps: SpawnDeps, req: SpawnRequest, runId: string, self: ProcessIdentity, waiting: boolean): Promise<Refusal | undefined> {
  const fleet = deps.config.config.fleet;
  const cap = fleetCap(deps.config.config, req.group);
  if (!fleet || cap === undefined) return undefined;
  const { state } = deps;
  const hostId = fleetHostId(fleet);
  // the host's own dead runs give their leases back before it counts (and its live ones renew)
  const local = localLeaseFacts(state, fleet, deps.now());
  let refusal: Refusal;
  try {
    const holder = { runId, name: req.name, pid: self.pid, startTime: self.startTime, bootId: self.bootId };
    const sync = { live: local.live.filter((h) => h.runId !== runId), ended: local.ended };
    const taken = await withClient(fleet, (c) => takeLease(c, { group: req.group, cap, hostId, holder, ttlMs: fleet.leaseTtlMs, sync }));
    // renewed just now: doctor's fleet.renewal reads when
    state.write(() => state.setKv(FLEET_RENEWED_KEY, { at: deps.now() }, deps.now()));
    if (taken.granted) return undefined;
    const count: FleetCount = { group: req.group, cap, ...taken.count };
    refusal = { admit: false, reason: 'fleet_full', exitCode: 75, message: fleetFullMessage(count), fleet: count };
  } catch (err) {
    if (!(err instanceof FleetUnreachable)) throw err;
    if (fleet.onUnreachable === 'admit') {
      const warning = `fleet: ${err.message}; ${req.name} admitted on this host's caps alone (fleet.on_unreachable = "admit")`;
      state.write(() => state.event({ command: deps.command ?? 'spawn', kind: 'fleet.unreachable', subject: req.name, reason: warning, data: { run_id: runId, group: req.group, admitted: true } }));
      deps.onWarning?.(warning);
      return undefined;
    }
    refusal = {
      admit: false,
      reason: 'fleet_unreachable',
      exitCode: 75,
      message: `fleet: ${err.message}; ${req.group} has a fleet-wide cap, so its spawns are refused until PostgreSQL answers (fleet.on_unreachable = "refuse")`,
    };
  }
  giveBack(state, req, runId, refusal, !waiting, deps.command ?? 'spawn');
  return refusal;
}

/** The fleet said no: the run never started, so its row and ports go as if it was never admitted. */
function giveBack(state: State, req: SpawnRequest, runId: string, d: Refusal, final: boolean, command: string): void {
  state.write(() => {
    state.db.prepare('DELETE FROM runs WHERE id = ? AND pid IS NULL AND ended_at IS NULL').run(runId);
    state.db.prepare("DELETE FROM port_leases WHERE owner_kind = 'run' AND owner = ?").run(runId);
    if (final) {
      state.event({
        command,
        kind: 'spawn.refused',
        subject: req.name,
        reason: `${d.message} (${runId}'s local slot given back)`,
        data: { reason: d.reason, exit_code: d.exitCode, run_id: runId, ...(d.fleet ? { limit_kind: 'fleet', used: d.fleet.used, limit: d.fleet.cap } : {}) },
      });
    }
    // the slot is free again for the waiters of this host
    ringAfterCommit(state);
  });
}

/** A run of a fleet-capped group ended here: give its lease back now (best effort; reconcile does it otherwise). */
export async function releaseFleetLease(deps: SpawnDeps, req: SpawnRequest, runId: string): Promise<void> {
  const fleet = deps.config.config.fleet;
  if (!fleet || fleetCap(deps.config.config, req.group) === undefined) return;
  try {
    await withClient(fleet, (c) => releaseLeases(c, fleetHostId(fleet), [runId]));
  } catch {
    /* the next spawn, ps or reap on this host releases it, or it expires */
  }
}

/** Waiting for the fleet: a listener for released leases of the group, opened on first need. */
export class FleetWait {
  private listener: FleetListener | undefined;

  constructor(
    private readonly deps: SpawnDeps,
    private readonly req: SpawnRequest,
  ) {}

  /** Sleep until a lease of the group is released and the fleet has room, or `ms` passes. */
  async pause(ms: number): Promise<void> {
    const fleet = this.deps.config.config.fleet!;
    const cap = fleetCap(this.deps.config.config, this.req.group)!;
    this.listener ??= await FleetListener.open(fleet, this.req.group);
    const until = this.deps.now() + ms;
    for (;;) {
      const left = until - this.deps.now();
      if (left <= 0) return;
      await this.listener.wait(Math.min(left, FLEET_POLL_MS + Math.floor(Math.random() * 100)));
      if (await this.listener.room(cap)) return;
    }
  }

  close(): void {
    this.listener?.close();
  }
}
