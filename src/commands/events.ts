/** agentctl events: the audit log of decisions and actions. */
import type { Ctx, Outcome, Ui } from '../core/ctx.js';
import type { EventRow } from '../core/state.js';
import { type EventFilter, followEvents, lastEventId, shownEvent } from '../core/events.js';
import { parseSince } from '../core/since.js';
import { parseIntInRange } from '../core/units.js';
import type { CommandDecl, OptionValues } from '../core/declaration.js';

export const declaration: CommandDecl = {
  name: 'events',
  description: 'show the audit log: every decision and action, with its reason',
  options: [
    { flags: '--since <duration>', help: 'only events newer than this (e.g. 30m, 1h, 7d) or an ISO time' },
    { flags: '--kind <kind>', help: 'only events of this kind (e.g. throttle.level)' },
    { flags: '--command <name>', help: 'only events written by this command' },
    { flags: '--limit <n>', help: 'at most n events, the newest', default: '100' },
    { flags: '-f, --follow', help: 'then print new events as they are written, one a line (--json: JSON lines), until interrupted' },
  ],
  examples: ['agentctl events --since 1h', 'agentctl events --kind throttle.level --json', 'agentctl events --limit 20', 'agentctl events -f --kind breaker.open --limit 0 --json'],
  exitCodes: '0 printed; with --follow 130 on Ctrl-C (143 on SIGTERM); 2 bad input',
};

export interface EventsResult {
  readonly since: string | null;
  readonly count: number;
  readonly events: readonly ShownEvent[];
}

type ShownEvent = Omit<EventRow, 'ts'> & { time: string };

// reasons and data quote command lines; rows written before redaction may hold secrets
const shown = (e: EventRow): ShownEvent => {
  const { ts, ...rest } = shownEvent(e);
  return { time: new Date(ts).toISOString(), ...rest };
};

export async function run(opts: OptionValues, _args: readonly string[], ctx: Ctx): Promise<Outcome<EventsResult>> {
  const now = ctx.now();
  const follow = Boolean(opts.follow);
  const since = opts.since === undefined ? undefined : parseSince(String(opts.since), now);
  // --follow --limit 0: only what is written from now on
  const limit = parseIntInRange(String(opts.limit), '--limit', follow ? 0 : 1, 1_000_000);
  const filter: EventFilter = { kind: opts.kind === undefined ? undefined : String(opts.kind), command: opts.command === undefined ? undefined : String(opts.command) };
  const state = ctx.state();
  // the newest id first: an event written while the backlog is read is followed, not lost
  const upTo = follow ? lastEventId(state) : 0;
  const rows =
    limit === 0
      ? []
      : state.events({
          limit,
          ...(since !== undefined ? { sinceMs: since } : {}),
          ...(filter.kind !== undefined ? { kind: filter.kind } : {}),
          ...(filter.command !== undefined ? { command: filter.command } : {}),
        });
  if (!follow) {
    return { data: { since: since === undefined ? null : new Date(since).toISOString(), count: rows.length, events: rows.map(shown) }, alwaysPrint: true }; // a listing is data: --quiet does not hide it
  }
  const print = (e: EventRow) => ctx.stdout.write(`${ctx.globals.json ? JSON.stringify(shown(e)) : renderLine(shown(e), ctx.ui)}\n`);
  for (const e of rows) if (e.id <= upTo) print(e);
  const signal = await followEvents(state, upTo, filter, print);
  return { exitCode: signal === 'SIGINT' ? 130 : 143 };
}

/** One event on one line (wrapped at the terminal's width), as --follow prints them. */
export function renderLine(e: ShownEvent, ui: Ui): string {
  return ui.wrap(`${e.time.replace('T', ' ').slice(0, 19)}  ${e.kind}${e.subject ? ` ${e.subject}` : ''}: ${e.reason}`, 21);
}

export function render(r: EventsResult, ui: Ui): string {
  if (r.events.length === 0) return `no events${r.since ? ` since ${r.since}` : ''}`;
  return ui.table(
    ['time', 'command', 'kind', 'subject', 'reason'],
    r.events.map((e) => [e.time.replace('T', ' ').slice(0, 19), e.command, e.kind, e.subject ?? '', e.reason]),
    // on a narrow terminal the command leaves first: the kind names it (throttle.level, spawn.admitted)
    { command: 'drop', subject: 'cut-last', reason: 'wrap' },
  );
}
