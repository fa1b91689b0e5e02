/** agentctl ports: the pool, what is leased, to whom, and what is held by expired owners. */
import type { Ctx, Outcome, Ui } from '../core/ctx.js';
import { envLeaseState } from '../core/envs.js';
import { poolUsage } from '../core/ports/pool.js';
import { reconcileAll } from '../core/runs/reconcile.js';
import type { CommandDecl, OptionValues } from '../core/declaration.js';

export const declaration: CommandDecl = {
  name: 'ports',
  description: 'the port pool: size, leased, free, and leases held by expired or dead owners',
  examples: ['agentctl ports', 'agentctl ports --json | jq .free'],
};

export interface PortsResult {
  readonly range: string;
  readonly size: number;
  readonly leased: number;
  readonly free: number;
  /** unleased ports some other program listens on */
  readonly in_use_elsewhere: number;
  readonly held_by_expired: number;
  readonly held_by_dead_owner: number;
  readonly leases: ReadonlyArray<{ port: number; owner_kind: string; owner: string; leased_at: string; state: 'ok' | 'expired' | 'owner_dead' }>;
}

export async function run(_opts: OptionValues, _args: readonly string[], ctx: Ctx): Promise<Outcome<PortsResult>> {
  const loaded = ctx.config();
  const { from, to } = loaded.config.ports;
  const state = ctx.state();
  const now = ctx.now();
  reconcileAll(state, loaded, now, 'ports'); // runs that ended give their ports back
  const u = state.guard(() => poolUsage(state, { from, to }, envLeaseState(state, now)));
  return {
    data: {
      range: `${from}-${to}`,
      size: u.size,
      leased: u.leases.length,
      free: u.free,
      in_use_elsewhere: u.elsewhere,
      held_by_expired: u.expired,
      held_by_dead_owner: u.ownerDead,
      leases: u.leases.map((l) => ({ port: l.port, owner_kind: l.owner_kind, owner: l.owner, leased_at: new Date(l.leased_at).toISOString(), state: l.state })),
    },
    alwaysPrint: true,
  };
}

export function render(r: PortsResult, ui: Ui): string {
  const head = `pool ${r.range}: ${r.size} ports, ${r.leased} leased, ${r.free} free, ${r.in_use_elsewhere} in use by other programs${r.held_by_expired || r.held_by_dead_owner ? `; ${r.held_by_expired} held by expired environments, ${r.held_by_dead_owner} by dead owners (run: agentctl env-gc)` : ''}`;
  if (!r.leases.length) return ui.wrap(head, 2);
  return `${ui.wrap(head, 2)}\n${ui.table(
    ['port', 'owner', 'since', 'state'],
    r.leases.map((l) => [l.port, `${l.owner_kind} ${l.owner}`, l.leased_at.replace('T', ' ').slice(0, 19), l.state === 'ok' ? 'ok' : ui.c.yellow(l.state)]),
    { owner: 'cut' },
  )}`;
}
