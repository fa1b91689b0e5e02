/** agentctl breaker ls | reset NAME: per-name backoff and circuit state, and the human override. */
import type { Ctx, Outcome, Ui } from '../core/ctx.js';
import { UsageError } from '../core/errors.js';
import { checkName } from '../core/names.js';
import { reconcileAll } from '../core/runs/reconcile.js';
import { HEALTHY, modeAt, type NameHealth } from '../core/policy.js';
import { type HostBreaker, howEnded } from '../core/spawn/admission.js';
import { getHealth, HOST_BREAKER_KEY, HOST_BREAKER_RESET_KEY, setHealth } from '../core/runs/health.js';
import { printable } from '../core/text.js';
import { formatDuration } from '../core/units.js';
import type { CommandDecl, OptionValues } from '../core/declaration.js';

export const declaration: CommandDecl = {
  name: 'breaker',
  description: 'per-name backoff and circuit state, and the host-wide startup-failure breaker ("ls", the default); "reset NAME" or "reset --host" after fixing the cause',
  args: [
    { name: '[action]', help: 'ls or reset', choices: ['ls', 'reset'], default: 'ls' },
    { name: '[name]', help: 'name to reset' },
  ],
  options: [{ flags: '--host', help: 'with reset: reset the host-wide startup-failure breaker' }],
  examples: ['agentctl breaker', 'agentctl breaker reset assigner', 'agentctl breaker reset --host'],
};

export interface BreakerEntry {
  readonly name: string;
  readonly mode: string;
  readonly consecutive_failures: number;
  readonly last_failure: string | null;
  readonly not_before: string | null;
  readonly reason: string | null;
}

/** The host-wide startup-failure breaker, as shown. */
export interface HostBreakerEntry {
  readonly mode: 'open' | 'closed';
  readonly opened_at: string | null;
  readonly not_before: string | null;
  readonly reason: string | null;
  /** the startup errors that opened it, newest last */
  readonly failures: ReadonlyArray<{ name: string; run_id: string; at: string; exit_code: number | null; signal?: string | null }>;
}

export interface BreakerResult {
  readonly action: 'ls' | 'reset';
  readonly breakers: readonly BreakerEntry[];
  readonly host: HostBreakerEntry;
  readonly reset?: { readonly name: string; readonly was: string };
  /** `breaker reset --host`: what the host breaker was */
  readonly reset_host?: { readonly was: 'open' | 'closed' };
}

function hostEntry(hb: HostBreaker | undefined, now: number): HostBreakerEntry {
  const open = hb !== undefined && hb.notBefore > now;
  return {
    mode: open ? 'open' : 'closed',
    opened_at: hb && open ? new Date(hb.openedAt).toISOString() : null,
    not_before: hb && open ? new Date(hb.notBefore).toISOString() : null,
    reason: hb && open ? hb.reason : null,
    failures: hb && open ? hb.failures.map((f) => ({ ...f, at: new Date(f.at).toISOString() })) : [],
  };
}

function entry(name: string, h: NameHealth, now: number): BreakerEntry {
  return {
    name,
    mode: modeAt(h, now),
    consecutive_failures: h.consecutiveFailures,
    last_failure: h.lastFailure,
    not_before: h.notBefore > now ? new Date(h.notBefore).toISOString() : null,
    reason: h.reason,
  };
}

export async function run(opts: OptionValues, args: readonly string[], ctx: Ctx): Promise<Outcome<BreakerResult>> {
  const [action, target] = args;
  const host = Boolean(opts.host);
  if (host && (action !== 'reset' || target !== undefined)) throw new UsageError('--host: only with "breaker reset", without a NAME: agentctl breaker reset --host');
  const state = ctx.state();
  reconcileAll(state, ctx.config(), ctx.now(), 'breaker'); // record runs that ended since anyone looked
  const now = ctx.now();
  const hostNow = () => hostEntry(state.getKv<HostBreaker>(HOST_BREAKER_KEY)?.value, now);
  if (action === 'reset' && host) {
    const was = state.write(() => {
      const before = hostNow();
      state.db.prepare('DELETE FROM kv WHERE key = ?').run(HOST_BREAKER_KEY);
      // the startup errors that opened it no longer count toward opening it again
      state.setKv(HOST_BREAKER_RESET_KEY, now, now);
      state.event({ command: 'breaker', kind: 'breaker.reset', subject: 'host', reason: `host breaker reset by hand (was ${before.mode}${before.reason ? `: ${before.reason}` : ''})` }, now);
      return before.mode;
    });
    return { data: { action: 'reset', breakers: [], host: hostNow(), reset_host: { was } } };
  }
  if (action === 'reset') {
    if (!target) throw new UsageError('breaker reset: missing NAME (or --host for the host-wide breaker); see agentctl breaker ls');
    const name = checkName(target, 'breaker reset');
    const was = state.write(() => {
      const h = getHealth(state, name);
      setHealth(state, name, HEALTHY, now);
      state.event(
        { command: 'breaker', kind: 'breaker.reset', subject: name, reason: `reset by hand (was ${modeAt(h, now)}, ${h.consecutiveFailures} failures${h.reason ? `: ${h.reason}` : ''})` },
        now,
      );
      const mode = modeAt(h, now);
      return mode === 'closed' && h.notBefore > now ? 'backing off' : mode;
    });
    return { data: { action: 'reset', breakers: [], host: hostNow(), reset: { name, was } } };
  }
  const rows = state.guard(() => state.db.prepare('SELECT name, value FROM health ORDER BY name').all() as Array<{ name: string; value: string }>);
  return { data: { action: 'ls', breakers: rows.map((r) => entry(r.name, JSON.parse(r.value) as NameHealth, now)), host: hostNow() }, alwaysPrint: true };
}

export function render(r: BreakerResult, ui: Ui): string {
  if (r.reset_host) return ui.wrap(`host breaker reset (was ${r.reset_host.was}); startup errors before now no longer count toward it`, 2);
  if (r.reset) return ui.wrap(`breaker for ${printable(r.reset.name)} reset (was ${r.reset.was}); the next spawn is admitted normally`, 2);
  const now = Date.now();
  const hostLine =
    r.host.mode === 'open'
      ? ui.wrap(
          ui.c.red(
            `host breaker OPEN: ${r.host.reason}; every spawn paused for ${formatDuration(Date.parse(r.host.not_before!) - now)} (recent: ${r.host.failures.map((f) => `${printable(f.name)} ${howEnded(f)}`).join(', ')}); agentctl breaker reset --host`,
          ),
          2,
        )
      : '';
  if (r.breakers.length === 0) return [hostLine, 'every name is healthy: no backoff, no open breaker'].filter(Boolean).join('\n');
  return (
    (hostLine ? `${hostLine}\n` : '') +
    ui.table(
      ['name', 'state', 'failures', 'last', 'blocked for', 'reason'],
      r.breakers.map((b) => [
        b.name,
        b.mode === 'closed' ? (b.not_before ? 'backoff' : 'closed') : ui.c.red(b.mode),
        b.consecutive_failures,
        b.last_failure ?? '-',
        b.not_before ? formatDuration(Date.parse(b.not_before) - now) : '-',
        b.reason ?? '',
      ]),
      { name: 'cut-last', reason: 'wrap' },
    )
  );
}
