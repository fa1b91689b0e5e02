/** agentctl events: the audit log of decisions and actions. */
import type { Ctx, Outcome, Ui } from '../core/ctx.js';
import type { EventRow } from '../core/state.js';
import { parseSince } from '../core/since.js';
import { redactText } from '../core/text.js';
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
  ],
  examples: ['agentctl events --since 1h', 'agentctl events --kind throttle.level --json', 'agentctl events --limit 20'],
};

export interface EventsResult {
  readonly since: string | null;
  readonly count: number;
  readonly events: ReadonlyArray<Omit<EventRow, 'ts'> & { time: string }>;
}

export async function run(opts: OptionValues, _args: readonly string[], ctx: Ctx): Promise<Outcome<EventsResult>> {
  const now = ctx.now();
  const since = opts.since === undefined ? undefined : parseSince(String(opts.since), now);
  const limit = parseIntInRange(String(opts.limit), '--limit', 1, 1_000_000);
  const kind = opts.kind === undefined ? undefined : String(opts.kind);
  const command = opts.command === undefined ? undefined : String(opts.command);
  const rows = ctx.state().events({
    limit,
    ...(since !== undefined ? { sinceMs: since } : {}),
    ...(kind !== undefined ? { kind } : {}),
    ...(command !== undefined ? { command } : {}),
  });
  return {
    data: {
      since: since === undefined ? null : new Date(since).toISOString(),
      count: rows.length,
      // reasons quote command lines; rows written before redaction may hold secrets
      events: rows.map(({ ts, ...rest }) => ({ time: new Date(ts).toISOString(), ...rest, reason: redactText(rest.reason) })),
    },
    alwaysPrint: true, // a listing is data: --quiet does not hide it
  };
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
