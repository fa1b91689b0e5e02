/**
 * An `[[agents]]` entry's `env`: created with its ports leased (and proven free) when it does
 * not exist, reused when it does, and kept from expiring while `up` keeps its entry running:
 * each `up` moves its expiry to at least now + env.ttl.
 */
import type { LoadedConfig } from '../config/types.js';
import { envLeaseState, gcReason, getEnv } from '../envs.js';
import { leasePorts, leaseVerified, listeningPorts } from '../ports/leases.js';
import { exhaustedMessage } from '../ports/pool.js';
import type { State } from '../state.js';

/** Make sure the environment exists and will outlive the next `up`; the refusal's reason, or undefined. */
export async function ensureEnv(state: State, loaded: LoadedConfig, env: { name: string; ports: number }, now: number): Promise<string | undefined> {
  const ttlMs = loaded.config.env.ttlMs;
  const range = loaded.config.ports;
  const existing = state.guard(() => getEnv(state, env.name));
  if (existing) {
    const due = gcReason(existing, now);
    if (due) return `environment ${env.name} is due for env-gc (${due}); run agentctl env-gc, then up again`;
    state.write(() => state.db.prepare('UPDATE envs SET expires_at = MAX(expires_at, ?) WHERE name = ?').run(now + ttlMs, env.name));
    return undefined;
  }
  const owner = { kind: 'env' as const, id: env.name };
  let raced = false;
  const ports = await leaseVerified(state, range, owner, env.ports, (skip) =>
    state.write(() => {
      // another up created it between our look and this transaction: use theirs
      if (getEnv(state, env.name)) return ((raced = true), []);
      const got = leasePorts(state, range, env.ports, owner, listeningPorts(), now, skip);
      if (!got) return undefined;
      state.db.prepare("INSERT INTO envs (name, created_at, expires_at, status) VALUES (?, ?, ?, 'ready')").run(env.name, now, now + ttlMs);
      state.event({ command: 'up', kind: 'env.created', subject: env.name, reason: `for an [[agents]] entry: ports ${got.join(', ') || 'none'}`, data: { ports: got, ttl_ms: ttlMs } });
      return got;
    }),
  );
  if (raced) return undefined;
  if (!ports) {
    return state.write(() => {
      state.db.prepare('DELETE FROM envs WHERE name = ? AND created_at = ?').run(env.name, now);
      return `no ports for environment ${env.name}: ${exhaustedMessage(state, range, env.ports, envLeaseState(state, now))}`;
    });
  }
  return undefined;
}
