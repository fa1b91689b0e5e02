/**
 * A name's health (backoff and breaker) and the host breaker, as kept in the state.
 */
import { HEALTHY, hostBreakerAfter, type NameHealth, type StartupFailure } from '../policy.js';
import type { State } from '../state.js';
import type { RegistryDeps } from './registry.js';

export function getHealth(state: State, name: string): NameHealth {
  const row = state.db.prepare('SELECT value FROM health WHERE name = ?').get(name) as { value: string } | undefined;
  if (!row) return HEALTHY;
  try {
    return JSON.parse(row.value) as NameHealth;
  } catch {
    return HEALTHY;
  }
}

export function setHealth(state: State, name: string, h: NameHealth, now: number): void {
  if (h === HEALTHY || (h.mode === 'closed' && h.consecutiveFailures === 0)) {
    state.db.prepare('DELETE FROM health WHERE name = ?').run(name);
    return;
  }
  state.db
    .prepare('INSERT INTO health (name, value, updated_at) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at')
    .run(name, JSON.stringify(h), now);
}

/** kv key of the host-wide startup-failure breaker (a HostBreaker while open or after). */
export const HOST_BREAKER_KEY = 'breaker.host';
/** kv key of the last `breaker reset --host`: failures before it no longer count. */
export const HOST_BREAKER_RESET_KEY = 'breaker.host.reset_at';

/** After a startup error: open the host breaker when startup errors across all names say a loop runs. */
export function openHostBreakerIfLooping(state: State, now: number, deps: RegistryDeps): void {
  const p = deps.policy;
  if (p.hostBreakerFailures <= 0) return;
  const resetAt = state.getKv<number>(HOST_BREAKER_RESET_KEY)?.value ?? 0;
  const since = Math.max(resetAt, now - p.hostBreakerWindowMs);
  // a startup error ends within min_uptime of its start: the started_at index finds them
  const rows = state.db
    .prepare(
      `SELECT name, id AS run_id, ended_at AS at, exit_code, signal FROM runs WHERE started_at > ? AND failure = 'startup_error' AND state = 'failed' AND mode != 'batch' AND ended_at > ?
       AND (exit_code IS NOT NULL OR signal IN ('SIGSEGV', 'SIGABRT', 'SIGBUS', 'SIGILL', 'SIGFPE')) ORDER BY ended_at`,
    )
    .all(since - deps.minUptimeMs, since) as StartupFailure[];
  const opened = hostBreakerAfter(state.getKv<{ notBefore: number }>(HOST_BREAKER_KEY)?.value, rows, now, p);
  if (!opened) return;
  state.setKv(HOST_BREAKER_KEY, opened, now);
  state.event(
    {
      command: deps.command,
      kind: 'breaker.open',
      subject: 'host',
      reason: `${opened.reason}; every spawn on this host paused until ${new Date(opened.notBefore).toISOString()}; agentctl breaker reset --host after fixing the cause`,
      data: { until: opened.notBefore, failures: opened.failures },
    },
    deps.now,
  );
}
