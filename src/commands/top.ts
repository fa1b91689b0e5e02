/** agentctl top: the live view of the host's runs, as `ps --watch` shows it (core/live/). */
import type { Ctx, Outcome, Ui } from '../core/ctx.js';
import type { CommandDecl, OptionValues } from '../core/declaration.js';
import { parseInterval } from '../core/live/interval.js';

export const declaration: CommandDecl = {
  name: 'top',
  description: 'the live view: throttle level and why, agents against the cap, queue, open breakers, and each live run with CPU %, RSS, uptime, restarts and ports',
  args: [{ name: '[interval]', help: 'time between frames, at least 100ms', default: '1s' }],
  examples: ['agentctl top', 'agentctl top 5s', 'agentctl top 2s | tee top.log   # piped: a plain snapshot every 2s', 'agentctl top --json | jq -c .throttle'],
};

export async function run(_opts: OptionValues, args: readonly string[], ctx: Ctx): Promise<Outcome<never>> {
  const intervalMs = parseInterval(args[0] ?? '1s', 'interval');
  // loaded when the view runs, not when the command tree is built
  const { runLive } = await import('../core/live/loop.js');
  await runLive(ctx, { intervalMs, command: 'top', title: 'agentctl top' });
  return {};
}

/** The view prints itself as it goes: there is no single result to render. */
export function render(_data: never, _ui: Ui): string {
  return '';
}
