/** agentctl ports: the pool, what is leased, to whom, and what is held by expired owners. */
import type { Outcome } from '../core/command.js';
import type { Ctx } from '../core/context.js';
import { getEnv, ownerAlive } from '../core/envs.js';
import type { Ui } from '../core/output.js';
import { listeningPorts } from '../core/ports.js';
import { reconcileAll } from '../core/spawn/spawn.js';

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

export async function run(_opts: Record<string, unknown>, _args: readonly string[], ctx: Ctx): Promise<Outcome<PortsResult>> {
  const loaded = ctx.config();
  const { from, to } = loaded.config.ports;
  const state = ctx.state();
  const now = ctx.now();
  reconcileAll(state, loaded, now, 'ports'); // runs that ended give their ports back
  const rows = state.guard(() => state.db.prepare('SELECT port, owner_kind, owner, leased_at FROM port_leases WHERE port BETWEEN ? AND ? ORDER BY port').all(from, to) as Array<{ port: number; owner_kind: string; owner: string; leased_at: number }>);
  const listening = listeningPorts();
  const leases = rows.map((r) => {
    let st: 'ok' | 'expired' | 'owner_dead' = 'ok';
    if (r.owner_kind === 'env') {
      const e = getEnv(state, r.owner);
      if (!e || now >= e.expires_at) st = 'expired';
      else if (!ownerAlive(e)) st = 'owner_dead';
    }
    return { port: r.port, owner_kind: r.owner_kind, owner: r.owner, leased_at: new Date(r.leased_at).toISOString(), state: st };
  });
  const leasedSet = new Set(rows.map((r) => r.port));
  let elsewhere = 0;
  for (let p = from; p <= to; p++) if (!leasedSet.has(p) && listening.has(p)) elsewhere++;
  const size = to - from + 1;
  return {
    data: {
      range: `${from}-${to}`,
      size,
      leased: rows.length,
      free: size - rows.length - elsewhere,
      in_use_elsewhere: elsewhere,
      held_by_expired: leases.filter((l) => l.state === 'expired').length,
      held_by_dead_owner: leases.filter((l) => l.state === 'owner_dead').length,
      leases,
    },
    alwaysPrint: true,
  };
}

export function render(r: PortsResult, ui: Ui): string {
  const head = `pool ${r.range}: ${r.size} ports, ${r.leased} leased, ${r.free} free, ${r.in_use_elsewhere} in use by other programs${r.held_by_expired || r.held_by_dead_owner ? `; ${r.held_by_expired} held by expired environments, ${r.held_by_dead_owner} by dead owners (run: agentctl env-gc)` : ''}`;
  if (!r.leases.length) return head;
  return `${head}\n${ui.table(['port', 'owner', 'since', 'state'], r.leases.map((l) => [l.port, `${l.owner_kind} ${l.owner}`, l.leased_at.replace('T', ' ').slice(0, 19), l.state === 'ok' ? 'ok' : ui.c.yellow(l.state)]))}`;
}
