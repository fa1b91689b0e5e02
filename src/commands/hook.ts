/**
 * agentctl _hook: run the `[[hooks]]` a command's events fired (internal: core/hooks/fire.ts
 * starts it detached once the command's write commits). Its job is in AGENTCTL_HOOK_JOB; the
 * events it reads back from the state by id. Each hook failure (an exit other than 0, a
 * timeout, an HTTP status of 400 or more, no connection) is recorded as a `hook.failed` event,
 * which fires no hook. Hidden from help.
 */
import type { Ctx, Outcome, Ui } from '../core/ctx.js';
import type { CommandDecl, OptionValues } from '../core/declaration.js';
import { UsageError } from '../core/errors.js';
import { shownEvent } from '../core/events.js';
import { type HookJob, JOB_VAR } from '../core/hooks/fire.js';
import type { Firing } from '../core/hooks/sink.js';
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

export async function run(_opts: OptionValues, _args: readonly string[], ctx: Ctx): Promise<Outcome<HookRunResult>> {
  const job = parseJob(ctx.env[JOB_VAR]);
  const state = ctx.state();
  const events = readEvents(ctx, [...new Set(job.firings.map((f) => f.event))]);
  const failures: Array<{ hook: string; event?: HookEvent; reason: string }> = [];
  if (job.dropped > 0) failures.push({ hook: 'hooks', reason: `${job.dropped} firings not run: at most 100 per command` });
  const todo = job.firings.filter((f) => events.has(f.event));
  const worker = async () => {
    for (let f = todo.shift(); f; f = todo.shift()) {
      const hook = job.hooks[f.hook]!;
      const event = events.get(f.event)!;
      const reason = await runHook(hook, event, ctx.env);
      if (reason !== undefined) failures.push({ hook: hook.name, event, reason });
    }
  };
  const ran = todo.length;
  await Promise.all(Array.from({ length: Math.min(PARALLEL, ran) }, worker));
  if (failures.length) {
    state.write(() => {
      for (const f of failures) {
        state.event({
          command: '_hook',
          kind: 'hook.failed',
          subject: f.hook,
          reason: f.event ? `${f.event.kind} event ${f.event.id}: ${f.reason}` : f.reason,
          data: f.event ? { event_id: f.event.id, event_kind: f.event.kind } : undefined,
        });
      }
    });
  }
  return { data: { ran, failed: failures.length } };
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
  const okFiring = (f: unknown) => typeof f === 'object' && f !== null && Number.isInteger((f as Firing).event) && job.hooks[(f as Firing).hook] !== undefined;
  if (!Array.isArray(firings) || !firings.every(okFiring)) bad('bad firings');
  return { hooks: job.hooks, firings: job.firings, dropped: Number.isInteger(job.dropped) ? job.dropped : 0 };
}

/** The events by id as a hook gets them (redacted as `events --json` shows them); ids not found are left out. */
function readEvents(ctx: Ctx, ids: readonly number[]): Map<number, HookEvent> {
  const state = ctx.state();
  const out = new Map<number, HookEvent>();
  if (ids.length === 0) return out;
  const rows = state.guard(() => state.db.prepare(`SELECT id, ts, command, kind, subject, reason, data FROM events WHERE id IN (${ids.map(() => '?').join(', ')})`).all(...ids)) as Array<
    Omit<EventRow, 'data'> & { data: string | null }
  >;
  for (const r of rows) {
    const { ts, ...rest } = shownEvent({ ...r, data: r.data === null ? null : (JSON.parse(r.data) as Record<string, unknown>) });
    out.set(r.id, { id: rest.id, time: new Date(ts).toISOString(), command: rest.command, kind: rest.kind, subject: rest.subject, reason: rest.reason, data: rest.data });
  }
  return out;
}

export function render(r: HookRunResult, _ui: Ui): string {
  return `${r.ran} hooks run, ${r.failed} failed`;
}
