/**
 * The fleet glue: which groups have a fleet cap, this host's id, the local facts a host's
 * leases are renewed and released from, and `fleetSync`, the renew-and-release step of every
 * command that reconciles (spawn, ps, reap, stop). Nothing here loads `pg` unless [fleet] is
 * configured and the step has something to do.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Config, FleetSettings, LoadedConfig } from '../config/types.js';
import { bootId } from '../identity.js';
import type { Ctx } from '../ctx.js';
import type { State } from '../state.js';
import { type LeaseHolder, type LeaseRow, listLeases, syncLeases } from './lease.js';
import { fleetTarget, withClient } from './pg.js';
import { initSchema, LEASE_TABLE } from './schema.js';

/** The fleet-wide cap of a group, or undefined (no [fleet], or the group is not capped). */
export function fleetCap(config: Config, group: string): number | undefined {
  const caps = config.fleet?.caps;
  return caps && Object.hasOwn(caps, group) ? caps[group] : undefined;
}

let machineId: string | undefined;

/** fleet.host_id, else the machine id (/etc/machine-id), else the host name. */
export function fleetHostId(fleet: FleetSettings): string {
  if (fleet.hostId !== undefined) return fleet.hostId;
  if (machineId === undefined) {
    let id = '';
    for (const path of ['/etc/machine-id', '/var/lib/dbus/machine-id']) {
      try {
        id = readFileSync(path, 'utf8').trim();
      } catch {
        continue;
      }
      if (/^[0-9a-f]{32}$/.test(id)) break;
      id = '';
    }
    machineId =
      id ||
      hostname()
        .replace(/[^A-Za-z0-9._-]/g, '_')
        .slice(0, 64) ||
      'unknown-host';
  }
  return machineId;
}

/** kv key: when this host last renewed its fleet leases ({ at }), for doctor's fleet.renewal. */
export const FLEET_RENEWED_KEY = 'fleet.renewed';

/** Ended runs are released for this long after their end (later their leases have expired anyway). */
const RELEASE_WINDOW_SLACK_MS = 60_000;

/**
 * What this host's state says of its fleet-capped runs: the live ones (whose leases are
 * renewed) and those ended within the lease's lifetime (whose leases are released).
 */
export function localLeaseFacts(state: State, fleet: FleetSettings, now: number): { live: LeaseHolder[]; ended: string[] } {
  const groups = Object.keys(fleet.caps);
  if (groups.length === 0) return { live: [], ended: [] };
  const marks = groups.map(() => '?').join(', ');
  const live = state.db.prepare(`SELECT id, name, pid, start_time, boot_id, sup_pid, sup_start_time FROM runs WHERE ended_at IS NULL AND grp IN (${marks})`).all(...groups) as Array<{
    id: string;
    name: string;
    pid: number | null;
    start_time: string | null;
    boot_id: string | null;
    sup_pid: number | null;
    sup_start_time: string | null;
  }>;
  const ended = state.db.prepare(`SELECT id FROM runs WHERE ended_at IS NOT NULL AND ended_at > ? AND grp IN (${marks})`).all(now - fleet.leaseTtlMs - RELEASE_WINDOW_SLACK_MS, ...groups) as Array<{
    id: string;
  }>;
  return {
    live: live.map((r) => ({
      runId: r.id,
      name: r.name,
      pid: r.pid ?? r.sup_pid ?? 0,
      startTime: (r.pid !== null ? r.start_time : r.sup_start_time) ?? '0',
      bootId: r.boot_id ?? bootId(),
    })),
    ended: ended.map((r) => r.id),
  };
}

/**
 * Renew this host's leases of live runs and release those of ended ones (one transaction).
 * Returns a warning line when PostgreSQL could not be asked: the caller's own work goes on,
 * on local state alone. Without [fleet], or with no fleet-capped runs, pg is never loaded.
 */
export async function fleetSync(state: State, loaded: LoadedConfig, now: number): Promise<string | undefined> {
  const fleet = loaded.config.fleet;
  if (!fleet) return undefined;
  const facts = localLeaseFacts(state, fleet, now);
  if (facts.live.length === 0 && facts.ended.length === 0) return undefined;
  try {
    await withClient(fleet, (c) => syncLeases(c, { hostId: fleetHostId(fleet), live: facts.live, ended: facts.ended, ttlMs: fleet.leaseTtlMs }));
    state.write(() => state.setKv(FLEET_RENEWED_KEY, { at: now }, now));
    return undefined;
  } catch (err) {
    return `fleet: leases not renewed: ${(err as Error).message}`;
  }
}

/** A group across the fleet: its cap here (null when this host's config has none), its leases per host. */
export interface FleetGroupView {
  readonly group: string;
  readonly cap: number | null;
  readonly used: number;
  readonly hosts: Record<string, number>;
}

export interface FleetStatus {
  readonly host_id: string;
  /** host:port/database, never the password */
  readonly database: string;
  readonly groups: readonly FleetGroupView[];
  readonly leases: readonly LeaseRow[];
}

/** Every unexpired lease in the fleet, by group and host. Throws FleetUnreachable. */
export async function fleetStatus(fleet: FleetSettings): Promise<FleetStatus> {
  const leases = await withClient(fleet, listLeases);
  const names = [...new Set([...Object.keys(fleet.caps), ...leases.map((l) => l.group)])].sort();
  const groups = names.map((group) => {
    const mine = leases.filter((l) => l.group === group);
    const hosts: Record<string, number> = {};
    for (const l of mine) hosts[l.host] = (hosts[l.host] ?? 0) + 1;
    return { group, cap: Object.hasOwn(fleet.caps, group) ? fleet.caps[group]! : null, used: mine.length, hosts };
  });
  return { host_id: fleetHostId(fleet), database: fleetTarget(fleet.url), groups, leases };
}

/** Create the lease table (idempotent). Throws FleetUnreachable. */
export async function fleetInit(fleet: FleetSettings): Promise<{ database: string; table: string }> {
  await withClient(fleet, initSchema);
  return { database: fleetTarget(fleet.url), table: LEASE_TABLE };
}

/** fleetSync for a command: a failure is one warning line on stderr; the command goes on. */
export async function noteFleetSync(ctx: Pick<Ctx, 'note'>, state: State, loaded: LoadedConfig, now: number): Promise<void> {
  const warning = await fleetSync(state, loaded, now);
  if (warning) ctx.note(`agentctl: warning: ${warning}`);
}
