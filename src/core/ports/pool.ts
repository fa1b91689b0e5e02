/**
 * The port pool as a whole: who holds which lease, in which state, and what is free. One
 * reading shared by `agentctl ports`, doctor's ports.pool check and the exhaustion message.
 * Whether an environment's lease is still good is the environments' to say (envs.ts
 * `envLeaseState`): the caller passes that in, so ports/ stays below envs.
 */
import { listeningPorts } from './leases.js';
import type { State } from '../state.js';

export type LeaseState = 'ok' | 'expired' | 'owner_dead';

export interface PoolUsage {
  readonly range: { readonly from: number; readonly to: number };
  readonly size: number;
  readonly leases: ReadonlyArray<{ port: number; owner_kind: string; owner: string; leased_at: number; state: LeaseState }>;
  /** unleased ports in the pool that some other program listens on */
  readonly elsewhere: number;
  readonly free: number;
  readonly expired: number;
  readonly ownerDead: number;
}

/** The state of an environment's leases, by the environment's name. */
export type EnvLeaseState = (env: string) => LeaseState;

export function poolUsage(state: State, range: { from: number; to: number }, envState: EnvLeaseState): PoolUsage {
  const rows = state.db.prepare('SELECT port, owner_kind, owner, leased_at FROM port_leases WHERE port BETWEEN ? AND ? ORDER BY port').all(range.from, range.to) as Array<{
    port: number;
    owner_kind: string;
    owner: string;
    leased_at: number;
  }>;
  const leases = rows.map((r) => ({ ...r, state: r.owner_kind === 'env' ? envState(r.owner) : 'ok' }));
  const leased = new Set(rows.map((r) => r.port));
  const listening = listeningPorts();
  let elsewhere = 0;
  for (let p = range.from; p <= range.to; p++) if (!leased.has(p) && listening.has(p)) elsewhere++;
  const size = range.to - range.from + 1;
  return {
    range,
    size,
    leases,
    elsewhere,
    free: size - rows.length - elsewhere,
    expired: leases.filter((l) => l.state === 'expired').length,
    ownerDead: leases.filter((l) => l.state === 'owner_dead').length,
  };
}

/** The message for an exhausted pool: how many leases are held by what, and what frees them. */
export function exhaustedMessage(state: State, range: { from: number; to: number }, want: number, envState: EnvLeaseState): string {
  const u = poolUsage(state, range, envState);
  return `no available ports: need ${want}, port pool ${range.from}-${range.to} has ${u.size} ports: ${u.leases.length} leased (${u.expired} by expired environments, ${u.ownerDead} by environments whose owner died), ${u.elsewhere} in use by other programs, ${u.free} free; ${u.expired + u.ownerDead > 0 ? 'run: agentctl env-gc' : 'see agentctl ports'}`;
}
