/**
 * agentctl stop NAME...|--group G|--all: graceful shutdown of registered runs (incident 4):
 * TERM every one at once, wait up to --grace (default 30s), KILL the rest, and report which
 * ended gracefully, which were forced, and how long it took.
 */
import type { Outcome } from '../core/command.js';
import type { Ctx } from '../core/context.js';
import { endRun, userFilter, type Ended } from '../core/control.js';
import { EXIT, ExitError, UsageError } from '../core/errors.js';
import { loadConfig, type LoadedConfig } from '../core/config.js';
import { checkName } from '../core/names.js';
import type { Ui } from '../core/output.js';
import { processUid } from '../core/proc.js';
import { reconcileAll } from '../core/spawn/spawn.js';
import { liveRuns } from '../core/spawn/runs.js';
import { printable } from '../core/text.js';
import { formatDuration, parseDuration } from '../core/units.js';

export interface StopResult {
  readonly dry_run: boolean;
  readonly selected: ReadonlyArray<{ run_id: string; name: string; pid: number | null }>;
  readonly not_running: readonly string[];
  readonly graceful: readonly string[];
  readonly forced: readonly string[];
  readonly failed: readonly string[];
  readonly ended: readonly Ended[];
  readonly duration_ms: number;
}

/** Incident 4: wait up to 30 s for running agents before terminating the rest. */
const DEFAULT_GRACE = '30s';

export async function run(opts: Record<string, unknown>, args: readonly string[], ctx: Ctx): Promise<Outcome<StopResult>> {
  const names = args.map((a) => checkName(a, 'stop NAME'));
  const group = opts.group !== undefined ? checkName(String(opts.group), '--group') : undefined;
  const all = Boolean(opts.all);
  if ([names.length > 0, group !== undefined, all].filter(Boolean).length !== 1) {
    throw new UsageError('stop: give NAME..., or --group G, or --all (exactly one of them)');
  }
  const graceMs = parseDuration(String(opts.grace ?? DEFAULT_GRACE), '--grace');
  const dry = Boolean(opts.dryRun);
  const mine = userFilter(Boolean(opts.allUsers));
  // a broken config must not block a shutdown: stop on the built-in defaults, and say so
  let loaded: LoadedConfig;
  try {
    loaded = ctx.config();
  } catch (err) {
    if (!(err instanceof ExitError) || err.exitCode !== EXIT.config) throw err;
    ctx.note(`agentctl: ${err.message}; stopping with the built-in defaults`);
    loaded = loadConfig({ defaultsOnly: true });
  }
  const state = ctx.state();
  const started = ctx.now();
  if (!dry) reconcileAll(state, loaded, started, 'stop');
  const live = state.guard(() => liveRuns(state)).filter((r) => r.pid !== null);
  const selected = live.filter((r) => (all ? true : group !== undefined ? r.grp === group : names.includes(r.name))).filter((r) => mine({ pid: r.pid!, uid: processUid(r.pid!) }));
  const notRunning = names.filter((n) => !selected.some((r) => r.name === n));
  const view = selected.map((r) => ({ run_id: r.id, name: r.name, pid: r.pid }));
  if (dry) return { data: { dry_run: true, selected: view, not_running: notRunning, graceful: [], forced: [], failed: [], ended: [], duration_ms: 0 } };
  const ended = (await Promise.all(selected.map((r) => endRun(state, loaded, r, graceMs, { timedOut: false, why: `stopped by agentctl stop (grace ${formatDuration(graceMs)})`, command: 'stop' })))).filter((e): e is Ended => e !== undefined);
  const duration = ctx.now() - started;
  const graceful = ended.filter((e) => e.graceful).map((e) => e.name!);
  const forced = ended.filter((e) => !e.graceful && e.survivors.length === 0).map((e) => e.name!);
  const failed = ended.filter((e) => e.survivors.length > 0).map((e) => e.name!);
  state.write(() =>
    state.event({ command: 'stop', kind: 'stop.done', subject: all ? 'all' : group ?? names.join(','), reason: `${graceful.length} ended gracefully, ${forced.length} forced after ${formatDuration(graceMs)}, ${failed.length} failed, in ${formatDuration(duration)}`, data: { graceful, forced, failed, duration_ms: duration } }),
  );
  return {
    data: { dry_run: false, selected: view, not_running: notRunning, graceful, forced, failed, ended, duration_ms: duration },
    exitCode: failed.length ? EXIT.failed : EXIT.ok,
    ...(failed.length ? { message: `could not end ${failed.join(', ')}` } : {}),
  };
}

/** Names read back from the state, for people. */
const list = (names: readonly string[]) => names.map((n) => printable(n)).join(', ');

export function render(r: StopResult, ui: Ui): string {
  const lines: string[] = [];
  if (r.dry_run) lines.push(r.selected.length ? `would stop: ${r.selected.map((s) => `${printable(s.name)} (PID ${s.pid})`).join(', ')}` : 'nothing to stop');
  else {
    if (r.selected.length === 0) lines.push('nothing to stop');
    if (r.graceful.length) lines.push(`ended gracefully: ${list(r.graceful)}`);
    if (r.forced.length) lines.push(ui.c.yellow(`forced (KILL after the grace): ${list(r.forced)}`));
    if (r.failed.length) lines.push(ui.c.red(`could not end: ${list(r.failed)}`));
    if (r.selected.length) lines.push(`shutdown took ${formatDuration(r.duration_ms)}`);
  }
  if (r.not_running.length) lines.push(`not running: ${list(r.not_running)}`);
  return lines.join('\n');
}
