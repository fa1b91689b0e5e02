import { allEnvs, ownerAlive } from './envs.js';
import { leasesOf, listeningPorts } from './ports.js';
import type { State } from './state.js';

/** The message for an exhausted pool: how many leases are held by what, and what frees them. */
export function exhaustedMessage(state: State, range: { from: number; to: number }, want: number, now: number): string {
  const size = range.to - range.from + 1;
  const leased = (state.db.prepare('SELECT COUNT(*) AS n FROM port_leases WHERE port BETWEEN ? AND ?').get(range.from, range.to) as { n: number }).n;
  let expired = 0;
  let dead = 0;
  for (const e of allEnvs(state)) {
    const n = leasesOf(state, { kind: 'env', id: e.name }).filter((p) => p >= range.from && p <= range.to).length;
    if (now >= e.expires_at) expired += n;
    else if (!ownerAlive(e)) dead += n;
  }
  const listening = listeningPorts();
  const leasedSet = new Set((state.db.prepare('SELECT port FROM port_leases WHERE port BETWEEN ? AND ?').all(range.from, range.to) as Array<{ port: number }>).map((r) => r.port));
  let elsewhere = 0;
  for (let p = range.from; p <= range.to; p++) if (!leasedSet.has(p) && listening.has(p)) elsewhere++;
  const free = size - leased - elsewhere;
  return `no available ports: need ${want}, port pool ${range.from}-${range.to} has ${size} ports: ${leased} leased (${expired} by expired environments, ${dead} by environments whose owner died), ${elsewhere} in use by other programs, ${free} free; ${expired + dead > 0 ? 'run: agentctl env-gc' : 'see agentctl ports'}`;
}

