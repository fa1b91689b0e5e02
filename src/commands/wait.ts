/**
 * agentctl wait NAME|RUN_ID... [--timeout D] [--any]: block until runs end and exit with the
 * run's exit code (several: the first non-zero in argument order, or 0), 75 when --timeout
 * runs out; as a shell's `wait`, so a Makefile can `spawn -d` ... `wait`. Signals nothing.
 */
import type { Ctx, Outcome, Ui } from '../core/ctx.js';
import type { CommandDecl, OptionValues } from '../core/declaration.js';
import { EXIT, UsageError } from '../core/errors.js';
import { resolveTargets, waitedRun, type WaitedRun, waitForRuns } from '../core/runs/wait.js';
import { waitText } from '../core/progress.js';
import { printable } from '../core/text.js';
import { formatDuration, parseDuration } from '../core/units.js';

export const declaration: CommandDecl = {
  name: 'wait',
  description: "block until runs end; exit with the run's exit code (several: the first non-zero), 75 on --timeout",
  args: [{ name: '<runs...>', help: 'run names (each its latest run) or run ids' }],
  options: [
    { flags: '--timeout <duration>', help: 'give up after this long (exit 75); the runs go on' },
    { flags: '--any', help: 'return as soon as one of the runs ends, with its code' },
  ],
  examples: ['agentctl wait build', 'agentctl wait lint test --timeout 30m', 'agentctl wait --any r0mwrf0p246fy01 r0mwrf0psr6if01 --json'],
  exitCodes: "the run's own code (128+n for signal n; several runs: the first non-zero, else 0); 1 a run lost; 2 bad input or an unknown run; 75 --timeout ran out",
};

export interface WaitResult {
  /** one per argument, in argument order, as last seen */
  readonly runs: readonly WaitedRun[];
  /** --timeout ran out before the runs (or, with --any, one of them) ended */
  readonly timed_out: boolean;
  /** the run whose code wait exits with, when one decided it (none on timeout or when all exited 0) */
  readonly decided_by: string | null;
  readonly waited_ms: number;
}

export async function run(opts: OptionValues, args: readonly string[], ctx: Ctx): Promise<Outcome<WaitResult>> {
  const timeoutMs = opts.timeout !== undefined ? parseDuration(String(opts.timeout), '--timeout') : undefined;
  const any = Boolean(opts.any);
  if (args.length === 0) throw new UsageError('wait: give one or more run names or run ids');
  const state = ctx.state();
  const { targets, unknown } = resolveTargets(state, args);
  if (unknown.length) {
    throw new UsageError(`wait: no run named ${unknown.map((u) => JSON.stringify(u)).join(', ')} (neither a run id nor a name with a run)`, { unknown });
  }
  // a status line on a terminal: the runs still waited for, and how long so far
  const progress = ctx.progress();
  const onWaiting = (pending: readonly { name: string }[]) =>
    progress.update(
      waitText(
        pending.map((r) => r.name),
        any,
      ),
    );
  const out = await waitForRuns({ state, config: ctx.config(), now: ctx.now }, [...new Set(targets.map((t) => t.runId))], { any, timeoutMs, onWaiting }).finally(() => progress.done());
  const now = ctx.now();
  const byId = new Map(out.rows.map((r) => [r.id, r]));
  const runs = targets.map((t) => waitedRun(byId.get(t.runId)!, now));
  const decided = out.decision.done && out.decision.decidedBy !== undefined ? out.rows[out.decision.decidedBy]! : undefined;
  const data: WaitResult = { runs, timed_out: out.timedOut, decided_by: decided?.id ?? null, waited_ms: out.waitedMs };
  if (out.timedOut) {
    const left = runs.filter((r) => r.status === null).map(label);
    return { data, exitCode: EXIT.tryLater, message: `wait: timed out after ${formatDuration(out.waitedMs)}; still running: ${left.join(', ')}` };
  }
  if (!out.decision.done) throw new Error('wait ended undecided');
  if (decided?.state === 'lost') {
    return { data, exitCode: out.decision.exitCode, message: `wait: ${label(waitedRun(decided, now))} was lost: its process and supervisor are gone and its exit status is unknown` };
  }
  return { data, exitCode: out.decision.exitCode };
}

const label = (r: WaitedRun) => `${r.name} (${r.run_id})`;

function line(r: WaitedRun, ui: Ui): string {
  const who = `${printable(r.name)} ${r.run_id}`;
  if (r.status === null) return `${who}: still ${r.state} after ${formatDuration(r.duration_ms)}`;
  const how = r.state === 'lost' ? 'exit status unknown' : r.exit_code === null && r.signal !== null ? `${r.signal} (${r.status})` : `exit ${r.status}`;
  const text = `${who}: ${r.state}, ${how} after ${formatDuration(r.duration_ms)}`;
  return r.status === 0 ? text : ui.c.red(text);
}

export function render(r: WaitResult, ui: Ui): string {
  return r.runs.map((x) => line(x, ui)).join('\n');
}
