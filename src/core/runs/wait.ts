/**
 * Waiting for runs to end (`agentctl wait`): which runs the arguments name, the pure decision
 * "given these runs' rows, are we done, and with which exit code", and the loop that reconciles,
 * decides, and sleeps on the slot bell (core/bell.ts) with a slow poll as the floor for ends
 * that ring no bell (a supervisor killed -9 is noticed only by a reconcile).
 */
import { BellListener, bellPath } from '../bell.js';
import type { LoadedConfig } from '../config/types.js';
import { EXIT, StateError } from '../errors.js';
import { checkName } from '../names.js';
import type { State } from '../state.js';
import { RUN_ID_RE, safeName, safeRunId } from './files.js';
import { reconcileAll } from './reconcile.js';
import { getRun, type RunRow } from './registry.js';
import { signalNumber } from './end.js';

/**
 * How often a waiter reconciles when no bell rings. A detached run's end rings the bell (its
 * supervisor touches it), so this only bounds how late a run whose supervisor was killed -9,
 * or a foreground run, is noticed; each reconcile is a write transaction and a look at /proc,
 * so it is never faster than the slot queue's own bell poll (spawn/wait.ts BELL_POLL_MS).
 */
export const WAIT_POLL_MS = 1000;

/** What the arguments named: each argument with the run it means, or unknown. */
export interface Resolved {
  readonly targets: ReadonlyArray<{ readonly arg: string; readonly runId: string }>;
  /** arguments that name no run: neither a run id nor a name with a run */
  readonly unknown: readonly string[];
}

/**
 * A RUN_ID means that run; a NAME its latest run (detached or not). An argument shaped like
 * a run id that names no run is tried as a name. Every argument is checked as a name first
 * (a run id is one), so nothing unchecked reaches a query or a file name. `what` names the
 * argument in the error for a bad one (`logs` resolves its one argument the same way).
 */
export function resolveTargets(state: State, args: readonly string[], what = 'wait NAME|RUN_ID'): Resolved {
  const targets: Array<{ arg: string; runId: string }> = [];
  const unknown: string[] = [];
  const latest = state.db.prepare('SELECT id FROM runs WHERE name = ? ORDER BY started_at DESC, id DESC LIMIT 1');
  for (const raw of args) {
    const arg = checkName(raw, what);
    const byId = RUN_ID_RE.test(arg) ? getRun(state, arg) : undefined;
    const id = byId?.id ?? (latest.get(arg) as { id: string } | undefined)?.id;
    if (id === undefined) unknown.push(arg);
    else targets.push({ arg, runId: safeRunId(id) });
  }
  return { targets, unknown };
}

/** One run as wait reports it (`--json`: `runs[]`). */
export interface WaitedRun {
  readonly run_id: string;
  readonly name: string;
  readonly state: RunRow['state'];
  readonly exit_code: number | null;
  readonly signal: string | null;
  /** how long it ran; for a run still running, how long it has run so far */
  readonly duration_ms: number;
  /** the code wait gives for this run: its exit code, 128 + n for signal n, 1 when lost; null while it runs */
  readonly status: number | null;
}

/** Has the run ended (recorded by a reconcile or its foreground agentctl)? */
const ended = (r: RunRow) => r.ended_at !== null;

/**
 * The code a finished run stands for, as a shell reports a child: its exit code, 128 + n when
 * signal n ended it (as spawn passes it through in the foreground), and 1 when it is `lost`
 * (its exit status is unknown) or ended with neither.
 */
export function runStatus(r: Pick<RunRow, 'state' | 'exit_code' | 'signal'>): number {
  if (r.state === 'lost') return EXIT.failed;
  if (r.exit_code !== null) return r.exit_code;
  const n = r.signal !== null ? signalNumber(r.signal) : undefined;
  return n !== undefined ? 128 + n : EXIT.failed;
}

export function waitedRun(r: RunRow, now: number): WaitedRun {
  return {
    run_id: r.id,
    name: safeName(r.name),
    state: r.state,
    exit_code: r.exit_code,
    signal: r.signal,
    duration_ms: Math.max(0, (r.ended_at ?? now) - r.started_at),
    status: ended(r) ? runStatus(r) : null,
  };
}

export type WaitDecision =
  | { readonly done: false }
  /** `decidedBy`: the index of the run whose code it is, if one decided it (none when all exited 0) */
  | { readonly done: true; readonly exitCode: number; readonly decidedBy: number | undefined };

/**
 * Are we done, and with which code? Rows in argument order. Without `any`: done when every run
 * has ended, with the first non-zero code in argument order, else 0. With `any`: done as soon
 * as one has ended, with the code of the first ended one in argument order.
 */
export function waitDecision(rows: ReadonlyArray<Pick<RunRow, 'state' | 'exit_code' | 'signal' | 'ended_at'>>, any: boolean): WaitDecision {
  if (any) {
    const i = rows.findIndex((r) => r.ended_at !== null);
    return i < 0 ? { done: false } : { done: true, exitCode: runStatus(rows[i]!), decidedBy: i };
  }
  if (rows.some((r) => r.ended_at === null)) return { done: false };
  const i = rows.findIndex((r) => runStatus(r) !== 0);
  return { done: true, exitCode: i < 0 ? 0 : runStatus(rows[i]!), decidedBy: i < 0 ? undefined : i };
}

export interface WaitDeps {
  readonly state: State;
  readonly config: LoadedConfig;
  readonly now: () => number;
  /** @default WAIT_POLL_MS */
  readonly pollMs?: number;
}

export interface WaitOutcome {
  readonly rows: readonly RunRow[];
  readonly decision: WaitDecision;
  readonly timedOut: boolean;
  readonly waitedMs: number;
}

/**
 * Reconcile, read the runs, decide; until done, sleep on the bell for at most the poll, within
 * what is left of the timeout. The bell wakes it at once when a detached run ends; nothing
 * runs in between, so waiting costs no CPU.
 */
export async function waitForRuns(
  deps: WaitDeps,
  runIds: readonly string[],
  opts: { any: boolean; timeoutMs: number | undefined; onWaiting?: (pending: readonly RunRow[]) => void },
): Promise<WaitOutcome> {
  const { state } = deps;
  const started = deps.now();
  const poll = deps.pollMs ?? WAIT_POLL_MS;
  // listen before the first look, so a run that ends between a look and the sleep still wakes us
  const bell = new BellListener(bellPath(state));
  try {
    for (;;) {
      try {
        reconcileAll(state, deps.config, deps.now(), 'wait');
      } catch (err) {
        // a writer held the state past the busy timeout: look at what is recorded, reconcile next time
        if (!(err instanceof StateError && err.reason === 'state_locked')) throw err;
      }
      const rows = runIds.map((id) => getRun(state, id)).filter((r): r is RunRow => r !== undefined);
      if (rows.length !== runIds.length) throw new Error('a run being waited for left the registry');
      const decision = waitDecision(rows, opts.any);
      const waited = deps.now() - started;
      if (decision.done) return { rows, decision, timedOut: false, waitedMs: waited };
      if (opts.timeoutMs !== undefined && waited >= opts.timeoutMs) return { rows, decision, timedOut: true, waitedMs: waited };
      // for a status line: the runs it still waits for
      opts.onWaiting?.(rows.filter((r) => !ended(r)));
      const left = opts.timeoutMs !== undefined ? opts.timeoutMs - waited : poll;
      await bell.wait(Math.max(1, Math.min(poll, left)));
    }
  } finally {
    bell.close();
  }
}
