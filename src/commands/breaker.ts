/** agentctl breaker ls | reset NAME: per-name backoff and circuit state, and the human override. */
import type { Outcome } from '../core/command.js';
import type { Ctx } from '../core/context.js';
import { UsageError } from '../core/errors.js';
import { checkName } from '../core/names.js';
import type { Ui } from '../core/output.js';
import { reconcileAll } from '../core/spawn/spawn.js';
import { HEALTHY, modeAt, type NameHealth } from '../core/spawn/policy.js';
import { getHealth, setHealth } from '../core/spawn/runs.js';
import { printable } from '../core/text.js';
import { formatDuration } from '../core/units.js';

export interface BreakerEntry {
  readonly name: string;
  readonly mode: string;
  readonly consecutive_failures: number;
  readonly last_failure: string | null;
  readonly not_before: string | null;
  readonly reason: string | null;
}

export interface BreakerResult {
  readonly action: 'ls' | 'reset';
  readonly breakers: readonly BreakerEntry[];
  readonly reset?: { readonly name: string; readonly was: string };
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

export async function run(_opts: Record<string, unknown>, args: readonly string[], ctx: Ctx): Promise<Outcome<BreakerResult>> {
  const [action = 'ls', target] = args;
  const state = ctx.state();
  reconcileAll(state, ctx.config(), ctx.now(), 'breaker'); // record runs that ended since anyone looked
  const now = ctx.now();
  if (action === 'reset') {
    if (!target) throw new UsageError('breaker reset: missing NAME; see agentctl breaker ls');
    const name = checkName(target, 'breaker reset');
    const was = state.write(() => {
      const h = getHealth(state, name);
      setHealth(state, name, HEALTHY, now);
      state.event({ command: 'breaker', kind: 'breaker.reset', subject: name, reason: `reset by hand (was ${modeAt(h, now)}, ${h.consecutiveFailures} failures${h.reason ? `: ${h.reason}` : ''})` }, now);
      const mode = modeAt(h, now);
      return mode === 'closed' && h.notBefore > now ? 'backing off' : mode;
    });
    return { data: { action: 'reset', breakers: [], reset: { name, was } } };
  }
  const rows = state.guard(() => state.db.prepare('SELECT name, value FROM health ORDER BY name').all() as Array<{ name: string; value: string }>);
  return { data: { action: 'ls', breakers: rows.map((r) => entry(r.name, JSON.parse(r.value) as NameHealth, now)) }, alwaysPrint: true };
}

export function render(r: BreakerResult, ui: Ui): string {
  if (r.reset) return `breaker for ${printable(r.reset.name)} reset (was ${r.reset.was}); the next spawn is admitted normally`;
  if (r.breakers.length === 0) return 'every name is healthy: no backoff, no open breaker';
  const now = Date.now();
  return ui.table(
    ['name', 'state', 'failures', 'last', 'blocked for', 'reason'],
    r.breakers.map((b) => [b.name, b.mode === 'closed' ? (b.not_before ? 'backoff' : 'closed') : ui.c.red(b.mode), b.consecutive_failures, b.last_failure ?? '-', b.not_before ? formatDuration(Date.parse(b.not_before) - now) : '-', b.reason ?? '']),
  );
}
