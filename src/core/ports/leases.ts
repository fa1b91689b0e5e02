/**
 * Port leases from the pool (ports/pool.ts reads the pool as a whole). A lease is granted
 * inside the caller's IMMEDIATE transaction, only for a port nobody listens on
 * (/proc/net/tcp{,6}), and then proven free by binding it on 127.0.0.1 and ::1; a port someone took meanwhile is given back and the next one leased instead.
 * Leases belong to an environment or a run and are released with it.
 */
import { createServer } from 'node:net';
import type { State } from '../state.js';
import { readProcFile } from '../proc.js';

export type LeaseOwner = { readonly kind: 'env' | 'run'; readonly id: string };

export interface Lease {
  readonly port: number;
  readonly owner_kind: 'env' | 'run';
  readonly owner: string;
  readonly leased_at: number;
}

/**
 * Listening sockets per port on this host, from /proc/net/tcp and tcp6 (Linux; empty
 * elsewhere). More than one on a port means two listeners (SO_REUSEPORT, or two services).
 */
export function listenerCounts(): Map<number, number> {
  const out = new Map<number, number>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = readProcFile(file);
    if (!text) continue;
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[3] !== '0A') continue; // 0A = TCP_LISTEN
      const port = Number.parseInt(f[1]?.split(':').pop() ?? '', 16);
      if (Number.isInteger(port)) out.set(port, (out.get(port) ?? 0) + 1);
    }
  }
  return out;
}

/** Ports something listens on. */
export function listeningPorts(): Set<number> {
  return new Set(listenerCounts().keys());
}

function bindOnce(port: number, host: string): Promise<'free' | 'busy' | 'n/a'> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'EADDRINUSE' || err.code === 'EACCES' ? 'busy' : 'n/a'));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve('free')));
  });
}

/** Can this port be bound right now on 127.0.0.1 and ::1? (An address the host lacks does not count against it.) */
export async function tryBind(port: number): Promise<boolean> {
  const v4 = await bindOnce(port, '127.0.0.1');
  if (v4 === 'busy') return false;
  const v6 = await bindOnce(port, '::1');
  return v6 !== 'busy';
}

/**
 * Lease `count` free ports to `owner` (call inside a write transaction). Returns the ports, or
 * undefined when the pool has too few free ones. `skip` lists ports found busy by tryBind.
 */
export function leasePorts(
  state: State,
  range: { from: number; to: number },
  count: number,
  owner: LeaseOwner,
  listening: Set<number>,
  now: number,
  skip: ReadonlySet<number> = new Set(),
): number[] | undefined {
  if (count <= 0) return [];
  const leased = new Set((state.db.prepare('SELECT port FROM port_leases WHERE port BETWEEN ? AND ?').all(range.from, range.to) as Array<{ port: number }>).map((r) => r.port));
  const got: number[] = [];
  for (let p = range.from; p <= range.to && got.length < count; p++) {
    if (!leased.has(p) && !listening.has(p) && !skip.has(p)) got.push(p);
  }
  if (got.length < count) return undefined;
  const ins = state.db.prepare('INSERT INTO port_leases (port, owner_kind, owner, leased_at) VALUES (?, ?, ?, ?)');
  for (const p of got) ins.run(p, owner.kind, owner.id, now);
  return got;
}

export function releasePorts(state: State, owner: LeaseOwner, ports?: readonly number[]): number {
  if (ports) {
    const del = state.db.prepare('DELETE FROM port_leases WHERE port = ? AND owner_kind = ? AND owner = ?');
    return ports.reduce((n, p) => n + del.run(p, owner.kind, owner.id).changes, 0);
  }
  return state.db.prepare('DELETE FROM port_leases WHERE owner_kind = ? AND owner = ?').run(owner.kind, owner.id).changes;
}

export function leasesOf(state: State, owner: LeaseOwner): number[] {
  return (state.db.prepare('SELECT port FROM port_leases WHERE owner_kind = ? AND owner = ? ORDER BY port').all(owner.kind, owner.id) as Array<{ port: number }>).map((r) => r.port);
}

/**
 * Lease ports and prove each free by binding it; a port bound by someone meanwhile is given
 * back and another leased. `leaseTx` runs the first transaction (it may do more, e.g. insert the env).
 */
export async function leaseVerified(
  state: State,
  range: { from: number; to: number },
  owner: LeaseOwner,
  count: number,
  leaseTx: (skip: ReadonlySet<number>) => number[] | undefined,
  maxRounds = 20,
): Promise<number[] | undefined> {
  const skip = new Set<number>();
  let ports = leaseTx(skip);
  for (let round = 0; ports && round < maxRounds; round++) {
    const busy: number[] = [];
    for (const p of ports) if (!(await tryBind(p))) busy.push(p);
    if (busy.length === 0) return ports;
    for (const b of busy) skip.add(b);
    const replacement = state.write(() => {
      releasePorts(state, owner, busy);
      return leasePorts(state, range, busy.length, owner, listeningPorts(), Date.now(), skip);
    });
    if (!replacement) {
      state.write(() => releasePorts(state, owner));
      return undefined;
    }
    ports = [...ports.filter((p) => !busy.includes(p)), ...replacement].sort((a, b) => a - b);
  }
  return ports && count === ports.length ? ports : undefined;
}
