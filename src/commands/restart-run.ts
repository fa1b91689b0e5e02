/**
 * agentctl _restart RUN_ID: the one question a waiting `spawn -d --restart` supervisor asks
 * (internal): record the run's end, decide with the restart policy, and when its time has
 * come ask admission again (core/spawn/restart.ts). Replies on stdout `sleep SECONDS` (ask
 * again then) or `done WHY` (stop asking). Hidden from help.
 */
import type { Ctx, Outcome, Ui } from '../core/ctx.js';
import { EXIT, ExitError, UsageError } from '../core/errors.js';
import { loadConfig } from '../core/config/load.js';
import type { LoadedConfig } from '../core/config/types.js';
import { spawnDeps } from '../core/spawn/deps.js';
import { restartStep } from '../core/spawn/restart.js';
import { printable } from '../core/text.js';
import type { CommandDecl, OptionValues } from '../core/declaration.js';

export const declaration: CommandDecl = {
  name: '_restart',
  description: "restart a run under its restart policy when its time comes (internal: a detached run's supervisor calls it)",
  hidden: true,
  args: [{ name: '<run-id>' }],
};

export type RestartOutput =
  { readonly run_id: string; readonly reply: 'sleep'; readonly sleep_ms: number; readonly why: string } | { readonly run_id: string; readonly reply: 'done'; readonly why: string };

export async function run(_opts: OptionValues, args: readonly string[], ctx: Ctx): Promise<Outcome<RestartOutput>> {
  const runId = args[0] ?? '';
  if (!/^r[0-9a-z]{6,20}$/.test(runId)) throw new UsageError(`_restart: invalid run id ${JSON.stringify(runId)}`);
  // a config broken since the spawn must not lose the run's end: the built-in defaults record
  // it, but admit nothing (a configured cap they do not know could be gone round); asked again
  let loaded: LoadedConfig;
  let admit = true;
  try {
    loaded = ctx.config();
  } catch (err) {
    if (!(err instanceof ExitError) || err.exitCode !== EXIT.config) throw err;
    ctx.note(`agentctl: ${err.message}; the restart waits until the config loads`);
    loaded = loadConfig({ defaultsOnly: true });
    admit = false;
  }
  ctx.state();
  const r = await restartStep(spawnDeps(ctx, loaded, '_restart'), runId, { admit });
  const data: RestartOutput = 'done' in r ? { run_id: runId, reply: 'done', why: r.done } : { run_id: runId, reply: 'sleep', sleep_ms: Math.max(1, Math.ceil(r.sleepMs)), why: r.why };
  return { data, alwaysPrint: true };
}

export function render(r: RestartOutput, _ui: Ui): string {
  return r.reply === 'sleep' ? `sleep ${(r.sleep_ms / 1000).toFixed(3)}` : `done ${printable(r.why)}`;
}
