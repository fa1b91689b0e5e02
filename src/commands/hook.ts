/**
 * agentctl _hook: run the `[[hooks]]` a command's events fired (internal: core/hooks/fire.ts
 * starts it detached once the command's write commits). Its job is in AGENTCTL_HOOK_JOB; the
 * events it reads back from the state by id. Each hook failure (an exit other than 0, a
 * timeout, an HTTP status of 300 or more, no connection) is recorded as a `hook.failed` event,
 * which fires no hook. The runner has a deadline of its own (runnerDeadlineMs): past it, the
 * hooks still running are ended. Hidden from help.
 */
import type { Ctx, Outcome, Ui } from '../core/ctx.js';
import type { CommandDecl, OptionValues } from '../core/declaration.js';
import { UsageError } from '../core/errors.js';
import { shownEvent } from '../core/events.js';
import { type HookJob, JOB_VAR } from '../core/hooks/fire.js';
import { type Firing, MAX_FIRINGS } from '../core/hooks/sink.js';
import { type HookEvent, runHook } from '../core/hooks/run.js';
import type { EventRow } from '../core/state.js';

export const declaration: CommandDecl = {
  name: '_hook',
  description: 'run the hooks a command fired (internal: started detached after the command commits)',
  hidden: true,
};

export interface HookRunResult {
  readonly ran: number;
  readonly failed: number;
}

/** How many hooks run at once. */
const PARALLEL = 8;
/** Slack on top of the runner's deadline: start-up, TERM-to-KILL grace, the final write. */
const DEADLINE_MARGIN_MS = 10_000;
/** The runner's deadline is never longer than this, whatever its job. */
const MAX_DEADLINE_MS = 15 * 60_000;

/**
 * How long the runner may take in all: its slowest hook's timeout for each round of PARALLEL
 * firings, plus a margin, at most MAX_DEADLINE_MS. Past it, what still runs is ended.
 */
export function runnerDeadlineMs(job: Pick<HookJob, 'hooks' | 'firings'>): number {
  const slowest = Math.max(0, ...job.hooks.map((h) => h.timeout_ms));
  return Math.min(MAX_DEADLINE_MS, slowest * Math.ceil(job.firings.length / PARALLEL) + DEADLINE_MARGIN_MS);
}

export async function run(_opts: OptionValues, _args: readonly string[], ctx: Ctx): Promise<Outcome<HookRunResult>> {
  const job = parseJob(ctx.env[JOB_VAR]);
  const events = readEvents(ctx, job.firings);
  const failures: Failure[] = [];
  const todo = job.firings.filter((f) => events.has(f.event));
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), runnerDeadlineMs(job));
  const worker = async () => {
    for (let f = todo.shift(); f; f = todo.shift()) {
      const hook = job.hooks[f.hook]!;
      const event = events.get(f.event)!;
      const reason = await runHook(hook, event, ctx.env, deadline.signal);
      if (reason !== undefined) failures.push({ hook: hook.name, event, reason });
    }
  };
  const ran = todo.length;
  try {
    await Promise.all(Array.from({ length: Math.min(PARALLEL, ran) }, worker));
  } finally {
    clearTimeout(timer);
  }
  if (failures.length || job.dropped > 0) record(ctx, failures, job.dropped);
  return { data: { ran, failed: failures.length } };
}

interface Failure {
  readonly hook: string;
  readonly event: HookEvent;
  readonly reason: string;
}

/** One hook.failed per failure, and one hook.dropped for firings past the command's cap. */
function record(ctx: Ctx, failures: readonly Failure[], dropped: number): void {
  const state = ctx.state();
  state.write(() => {
    for (const f of failures) {
      state.event({
        command: '_hook',
        kind: 'hook.failed',
        subject: f.hook,
        reason: `${f.event.kind} event ${f.event.id}: ${f.reason}`,
        data: { event_id: f.event.id, event_kind: f.event.kind },
      });
    }
    if (dropped > 0) {
      state.event({
        command: '_hook',
        kind: 'hook.dropped',
        subject: 'hooks',
        reason: `${dropped} firings not run: a command fires at most ${MAX_FIRINGS}; its later events fire nothing`,
        data: { dropped, max_firings: MAX_FIRINGS },
      });
    }
  });
}

/** The job, checked: it comes from our parent, through an environment anyone running as us could set. */
function parseJob(text: string | undefined): HookJob {
  const bad = (why: string): never => {
    throw new UsageError(`_hook: ${JOB_VAR}: ${why}`);
  };
  if (!text) return bad('not set (agentctl starts _hook itself)');
  let job: HookJob;
  try {
    job = JSON.parse(text) as HookJob;
  } catch {
    return bad('not JSON');
  }
  const okHook = (h: HookJob['hooks'][number]) =>
    typeof h === 'object' &&
    h !== null &&
    typeof h.name === 'string' &&
    typeof h.cwd === 'string' &&
    Number.isInteger(h.timeout_ms) &&
    h.timeout_ms > 0 &&
    (Array.isArray(h.command) ? h.command.length > 0 && h.command.every((c) => typeof c === 'string') : typeof h.url === 'string');
  if (!Array.isArray(job?.hooks) || !job.hooks.every(okHook)) bad('bad hooks');
  const firings: unknown = job.firings;
  const okFiring = (f: unknown) =>
    typeof f === 'object' &&
    f !== null &&
    Number.isInteger((f as Firing).event) &&
    typeof (f as Firing).kind === 'string' &&
    Number.isInteger((f as Firing).ts) &&
    job.hooks[(f as Firing).hook] !== undefined;
  if (!Array.isArray(firings) || !firings.every(okFiring)) bad('bad firings');
  return { hooks: job.hooks, firings: job.firings, dropped: Number.isInteger(job.dropped) ? job.dropped : 0 };
}

/**
 * The events the firings name, by id, as a hook gets them (redacted as `events --json` shows
 * them). An id not found, or found with another kind or time, is left out: a write that rolled
 * back can have used an id another event has now.
 */
function readEvents(ctx: Ctx, firings: readonly Firing[]): Map<number, HookEvent> {
  const state = ctx.state();
  const out = new Map<number, HookEvent>();
  const ids = [...new Set(firings.map((f) => f.event))];
  if (ids.length === 0) return out;
  const rows = state.guard(() => state.db.prepare(`SELECT id, ts, command, kind, subject, reason, data FROM events WHERE id IN (${ids.map(() => '?').join(', ')})`).all(...ids)) as Array<
    Omit<EventRow, 'data'> & { data: string | null }
  >;
  const expected = new Map(firings.map((f) => [f.event, f]));
  for (const r of rows) {
    const want = expected.get(r.id);
    if (!want || want.kind !== r.kind || want.ts !== r.ts) continue;
    const { ts, ...rest } = shownEvent({ ...r, data: r.data === null ? null : (JSON.parse(r.data) as Record<string, unknown>) });
    out.set(r.id, { id: rest.id, time: new Date(ts).toISOString(), command: rest.command, kind: rest.kind, subject: rest.subject, reason: rest.reason, data: rest.data });
  }
  return out;
}

export function render(r: HookRunResult, _ui: Ui): string {
  return `${r.ran} hooks run, ${r.failed} failed`;
}
