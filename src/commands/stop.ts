/**
 * agentctl stop NAME...|--group G|--all: graceful shutdown of registered runs (incident 4):
 * TERM every one at once, wait up to --grace (default 30s), KILL the rest, and report which
 * ended gracefully, which were forced, and how long it took.
 */
import type { Ctx, Outcome, Ui } from '../core/ctx.js';
import { endFromPidFile, endRun } from '../core/runs/end.js';
import { userFilter } from '../core/users.js';
import type { Ended } from '../core/kill.js';
import { EXIT, ExitError, StateError, UsageError } from '../core/errors.js';
import { loadConfig } from '../core/config/load.js';
import type { LoadedConfig } from '../core/config/types.js';
import { getIdentity } from '../core/identity.js';
import { checkName } from '../core/names.js';
import { processUid } from '../core/proc.js';
import { noteFleetSync } from '../core/fleet/fleet.js';
import { reconcileAll, runFate } from '../core/runs/reconcile.js';
import { liveRuns, type RunRow } from '../core/runs/registry.js';
import { endWaitingRestarts, pendingRestarts, settleRestarts } from '../core/runs/restarts.js';
import { readPidFiles } from '../core/runs/files.js';
import { type State, statePaths } from '../core/state.js';
import { graceTail, stopText } from '../core/progress.js';
import { printable } from '../core/text.js';
import { formatDuration, parseDuration } from '../core/units.js';
import type { CommandDecl, OptionValues } from '../core/declaration.js';

export const declaration: CommandDecl = {
  name: 'stop',
  description: 'graceful shutdown of registered runs: TERM, wait --grace, KILL; reports graceful vs forced',
  args: [{ name: '[names...]', help: 'run names' }],
  options: [
    { flags: '--group <group>', help: 'every run in this group' },
    { flags: '--all', help: 'every registered run' },
    // incident 4's "wait up to 30 s for running agents, then terminate the rest"; not reap.grace
    { flags: '--grace <duration>', help: 'how long to wait after TERM before KILL', default: '30s' },
    { flags: '--dry-run', help: 'say what would be stopped' },
    { flags: '--all-users', help: 'root only: also runs owned by other users' },
  ],
  examples: ['agentctl stop assigner', 'agentctl stop --group consult --grace 10s', 'agentctl stop --all --json'],
};

export interface StopResult {
  readonly dry_run: boolean;
  /** live runs it signals (or, under --dry-run, would signal) */
  readonly selected: ReadonlyArray<{ run_id: string; name: string; pid: number | null }>;
  /** selected runs whose process had already ended: recorded, never signalled (under --dry-run: would be) */
  readonly closed: ReadonlyArray<{ run_id: string; name: string; pid: number | null; why: string }>;
  readonly not_running: readonly string[];
  readonly graceful: readonly string[];
  readonly forced: readonly string[];
  readonly failed: readonly string[];
  readonly ended: readonly Ended[];
  readonly duration_ms: number;
  /** the state could not be read or written: runs were found by their PID files and stopped, but not recorded */
  readonly record_error?: string;
  /** ended runs whose supervisor waited to restart them (spawn -d --restart): their restart ended (under --dry-run: would end) */
  readonly restarts_ended?: ReadonlyArray<{ run_id: string; name: string; supervisor_pid: number | null }>;
}

/** How long stop waits for a selected run that is still starting to get its process. */
const STARTING_WAIT_MS = 5_000;

/**
 * A run admitted a moment ago has no process yet: wait (up to STARTING_WAIT_MS from `started`)
 * for the selected ones to get one or end, rather than let them start after the stop is done.
 */
async function untilStarted(ctx: Ctx, loaded: LoadedConfig, wanted: (r: RunRow) => boolean, started: number, live: RunRow[], closedRows: Array<{ run: RunRow; why: string }>) {
  const state = ctx.state();
  while (live.some((r) => wanted(r) && r.state === 'starting' && r.pid === null) && ctx.now() - started < STARTING_WAIT_MS) {
    await ctx.sleep(50);
    closedRows = closedRows.concat(reconcileAll(state, loaded, ctx.now(), 'stop'));
    live = state.guard(() => liveRuns(state));
  }
  return { live, closedRows };
}

/** A broken config must not block a shutdown: stop on the built-in defaults, and say so. */
function stopConfig(ctx: Ctx): LoadedConfig {
  try {
    return ctx.config();
  } catch (err) {
    if (!(err instanceof ExitError) || err.exitCode !== EXIT.config) throw err;
    ctx.note(`agentctl: ${err.message}; stopping with the built-in defaults`);
    return loadConfig({ defaultsOnly: true });
  }
}

/** Ended runs whose supervisor waits to restart them: their restart ended (under --dry-run, only listed). */
function selectRestarts(state: State, dry: boolean, wanted: (r: RunRow) => boolean): RunRow[] {
  return dry ? state.guard(() => pendingRestarts(state)).filter(wanted) : endWaitingRestarts(state, wanted, 'stop', getIdentity);
}

/** A state that cannot be used because its disk is full or failing: stopping must still stop. */
const DISK_TROUBLE = new Set(['state_disk_full', 'state_io_error']);

export async function run(opts: OptionValues, args: readonly string[], ctx: Ctx): Promise<Outcome<StopResult>> {
  const names = args.map((a) => checkName(a, 'stop NAME'));
  const group = opts.group !== undefined ? checkName(String(opts.group), '--group') : undefined;
  const all = Boolean(opts.all);
  if ([names.length > 0, group !== undefined, all].filter(Boolean).length !== 1) {
    throw new UsageError('stop: give NAME..., or --group G, or --all (exactly one of them)');
  }
  const graceMs = parseDuration(String(opts.grace), '--grace');
  const dry = Boolean(opts.dryRun);
  const mine = userFilter(Boolean(opts.allUsers));
  const loaded = stopConfig(ctx);
  const wanted = (r: { name: string; grp: string }) => (all ? true : group !== undefined ? r.grp === group : names.includes(r.name));
  const started = ctx.now();
  let closedRows: Array<{ run: RunRow; why: string }> = [];
  let live: RunRow[];
  let restarts: RunRow[] = [];
  try {
    const state = ctx.state();
    // a waiting restart ends first: one that claims its admission meanwhile is a live run below
    const restartWanted = (r: RunRow) => wanted(r) && (r.sup_pid === null || mine({ pid: r.sup_pid, uid: processUid(r.sup_pid) }));
    restarts = selectRestarts(state, dry, restartWanted);
    if (!dry) closedRows = reconcileAll(state, loaded, started, 'stop');
    // a run just ended whose restart its supervisor has yet to decide: it ends too, or comes back
    if (!dry) restarts = [...restarts, ...selectRestarts(state, dry, restartWanted)];
    live = state.guard(() => liveRuns(state));
    if (!dry) ({ live, closedRows } = await untilStarted(ctx, loaded, wanted, started, live, closedRows));
  } catch (err) {
    if (!(err instanceof StateError) || !DISK_TROUBLE.has(err.reason) || dry) throw err;
    return stopFromPidFiles(ctx, { wanted, names, all, group, graceMs, started, mine }, err.message);
  }
  const state = ctx.state();
  const closed: Array<StopResult['closed'][number]> = closedRows.filter((c) => wanted(c.run)).map((c) => ({ run_id: c.run.id, name: c.run.name, pid: c.run.pid, why: c.why }));
  let selected = live.filter(wanted).filter((r) => r.pid !== null && mine({ pid: r.pid, uid: processUid(r.pid) }));
  if (dry) {
    // the same reading the real stop reconciles on: a run already gone is recorded, not stopped
    const fates = selected.map((r) => ({ r, fate: runFate(state, r, { now: started, lookup: getIdentity }) }));
    for (const { r, fate } of fates) if (fate.kind === 'exited' || fate.kind === 'lost') closed.push({ run_id: r.id, name: r.name, pid: r.pid, why: fate.kind === 'exited' ? 'exited' : fate.why });
    selected = fates.filter(({ fate }) => fate.kind === 'alive' || fate.kind === 'adopt' || fate.kind === 'wait').map(({ r }) => r);
  }
  // the waiting supervisors were sent TERM; one still there after the grace gets KILL
  if (!dry && restarts.length) await settleRestarts(restarts, Math.min(graceMs, 5000), getIdentity, ctx.sleep);
  const restartsEnded = restarts.map((r) => ({ run_id: r.id, name: r.name, supervisor_pid: r.sup_pid }));
  const notRunning = names.filter((n) => !selected.some((r) => r.name === n) && !restarts.some((r) => r.name === n));
  const view = selected.map((r) => ({ run_id: r.id, name: r.name, pid: r.pid }));
  const more = restartsEnded.length ? { restarts_ended: restartsEnded } : {};
  if (dry) return { data: { dry_run: true, selected: view, closed, not_running: notRunning, graceful: [], forced: [], failed: [], ended: [], duration_ms: 0, ...more } };
  const ended = await endAll(ctx, selected, graceMs, (r) =>
    endRun(state, loaded, r, graceMs, { timedOut: false, why: `stopped by agentctl stop (grace ${formatDuration(graceMs)})`, command: 'stop' }),
  );
  const duration = ctx.now() - started;
  await noteFleetSync(ctx, state, loaded, ctx.now()); // the stopped runs give their fleet leases back
  const recordError = ended.find((e) => e.record_error !== undefined)?.record_error;
  if (recordError === undefined) {
    try {
      state.write(() =>
        state.event({
          command: 'stop',
          kind: 'stop.done',
          subject: all ? 'all' : (group ?? names.join(',')),
          reason: `${tally(ended)} in ${formatDuration(duration)}`,
          data: { ...sorted(ended), duration_ms: duration },
        }),
      );
    } catch (err) {
      if (!(err instanceof StateError)) throw err;
    }
  }
  return finish({
    dry_run: false,
    selected: view,
    closed,
    not_running: notRunning,
    ...sorted(ended),
    ended,
    duration_ms: duration,
    ...(recordError !== undefined ? { record_error: recordError } : {}),
    ...more,
  });
}

/**
 * End every run at once, with a status line on a terminal: the runs not yet ended, and how
 * much of the grace has passed.
 */
async function endAll<R extends { name: string; pid: number | null }>(ctx: Ctx, runs: readonly R[], graceMs: number, end: (r: R) => Promise<Ended | undefined>): Promise<Ended[]> {
  const progress = ctx.progress();
  const left = new Set(runs);
  const show = () => left.size > 0 && progress.update(stopText([...left]), graceTail(graceMs));
  show();
  try {
    const ended = await Promise.all(
      runs.map(async (r) => {
        const e = await end(r);
        left.delete(r);
        show();
        return e;
      }),
    );
    return ended.filter((e): e is Ended => e !== undefined);
  } finally {
    progress.done();
  }
}

/** graceful / forced / failed, by name; a run with survivors failed, whatever its leader did. */
function sorted(ended: readonly Ended[]): { graceful: string[]; forced: string[]; failed: string[] } {
  return {
    graceful: ended.filter((e) => e.graceful && e.survivors.length === 0).map((e) => e.name!),
    forced: ended.filter((e) => !e.graceful && e.survivors.length === 0).map((e) => e.name!),
    failed: ended.filter((e) => e.survivors.length > 0).map((e) => e.name!),
  };
}

function tally(ended: readonly Ended[]): string {
  const s = sorted(ended);
  return `${s.graceful.length} ended gracefully, ${s.forced.length} forced, ${s.failed.length} failed`;
}

function finish(data: StopResult): Outcome<StopResult> {
  const problems = [
    ...(data.failed.length ? [`could not end ${data.failed.join(', ')} (survivors: PID ${data.ended.flatMap((e) => e.survivors).join(', ')})`] : []),
    ...(data.record_error !== undefined ? [`stopped, but the state could not record it: ${data.record_error}`] : []),
  ];
  return { data, exitCode: problems.length ? EXIT.failed : EXIT.ok, ...(problems.length ? { message: problems.join('; ') } : {}) };
}

/**
 * The state cannot be read (a full disk): find the runs by their PID files, which carry each
 * run's identity, name and group, and stop them; every signal is identity-checked as always.
 */
async function stopFromPidFiles(
  ctx: Ctx,
  sel: { wanted: (r: { name: string; grp: string }) => boolean; names: string[]; all: boolean; group: string | undefined; graceMs: number; started: number; mine: ReturnType<typeof userFilter> },
  error: string,
): Promise<Outcome<StopResult>> {
  ctx.note(`agentctl: ${error}; stopping the runs named in the PID files, without recording it`);
  const entries = readPidFiles(statePaths(ctx.stateDir().dir).pids).filter((e) => sel.wanted({ name: e.name, grp: e.group }) && sel.mine({ pid: e.pid, uid: processUid(e.pid) }));
  const ended = await endAll(ctx, entries, sel.graceMs, (e) => endFromPidFile(e, sel.graceMs, error));
  const view = entries.map((e) => ({ run_id: e.run_id, name: e.name, pid: e.pid }));
  const notRunning = sel.names.filter((n) => !entries.some((e) => e.name === n));
  return finish({ dry_run: false, selected: view, closed: [], not_running: notRunning, ...sorted(ended), ended, duration_ms: ctx.now() - sel.started, record_error: error });
}

/** Names read back from the state, for people. */
const list = (names: readonly string[]) => names.map((n) => printable(n)).join(', ');

export function render(r: StopResult, ui: Ui): string {
  const lines: string[] = [];
  const closedLine = (verb: string) => `${verb}: ${r.closed.map((c) => `${printable(c.name)} (${c.why})`).join(', ')}`;
  const restarts = r.restarts_ended ?? [];
  if (restarts.length) lines.push(`${r.dry_run ? 'would end the restart of' : 'restart ended'}: ${restarts.map((x) => `${printable(x.name)} (run ${x.run_id})`).join(', ')}`);
  if (r.dry_run) {
    lines.push(r.selected.length ? `would stop: ${r.selected.map((s) => `${printable(s.name)} (PID ${s.pid})`).join(', ')}` : 'nothing to stop');
    if (r.closed.length) lines.push(closedLine('would record as ended, no signal'));
  } else {
    if (r.selected.length === 0 && !restarts.length) lines.push('nothing to stop');
    if (r.closed.length) lines.push(closedLine('already ended, recorded'));
    if (r.graceful.length) lines.push(`ended gracefully: ${list(r.graceful)}`);
    if (r.forced.length) lines.push(ui.c.yellow(`forced (KILL after the grace): ${list(r.forced)}`));
    if (r.failed.length) lines.push(ui.c.red(`could not end: ${list(r.failed)}`));
    const escaped = r.ended.filter((e) => e.swept.length > 0);
    for (const e of escaped) lines.push(`${printable(e.name ?? '')}: ended ${e.swept.length} descendant(s) that had left its process group (PID ${e.swept.join(', ')})`);
    for (const e of r.ended) if (e.survivors.length) lines.push(ui.c.red(`${printable(e.name ?? '')}: still alive: PID ${e.survivors.join(', ')}`));
    if (r.selected.length) lines.push(`shutdown took ${formatDuration(r.duration_ms)}`);
    if (r.record_error !== undefined) lines.push(ui.c.red(`not recorded: ${r.record_error}`));
  }
  if (r.not_running.length) lines.push(`not running: ${list(r.not_running)}`);
  return lines.join('\n');
}
