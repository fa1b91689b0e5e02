/**
 * agentctl _end-run RUN_ID: end one run's tree (TERM, grace, KILL, sweep). Internal: the
 * detached supervisor's timeout watchdog calls it, so a detached --timeout ends escaped
 * descendants too. Hidden from help.
 */
import type { Ctx, Outcome, Ui } from '../core/ctx.js';
import { EXIT, ExitError, UsageError } from '../core/errors.js';
import { loadConfig } from '../core/config/load.js';
import type { LoadedConfig } from '../core/config/types.js';
import { reconcileAll } from '../core/runs/reconcile.js';
import { type Ended, endTree } from '../core/kill.js';
import { getRun, runIdentity } from '../core/runs/registry.js';
import { parseDuration } from '../core/units.js';
import type { CommandDecl, OptionValues } from '../core/declaration.js';

export const declaration: CommandDecl = {
  name: '_end-run',
  description: "end one run's tree (internal: a detached run's timeout watchdog calls it)",
  hidden: true,
  args: [{ name: '<run-id>' }],
  options: [{ flags: '--grace <duration>', help: 'time between TERM and KILL', default: '10s' }],
};

interface EndOutput {
  readonly run_id: string;
  readonly graceful?: boolean;
  readonly forced?: boolean;
  readonly swept?: readonly number[];
  readonly survivors?: readonly number[];
  readonly duration_ms?: number;
}

const endJson = (runId: string, r: Ended): EndOutput => ({ run_id: runId, graceful: r.graceful, forced: r.forced, swept: r.swept, survivors: r.survivors, duration_ms: r.duration_ms });

export async function run(opts: OptionValues, args: readonly string[], ctx: Ctx): Promise<Outcome<EndOutput>> {
  const runId = args[0] ?? '';
  if (!/^r[0-9a-z]{6,20}$/.test(runId)) throw new UsageError(`_end-run: invalid run id ${JSON.stringify(runId)}`);
  const graceMs = parseDuration(String(opts.grace), '--grace');
  const state = ctx.state();
  // a run whose spawner died before recording its PID is adopted first, so its timeout holds;
  // a broken config must not keep a timeout from ending the run (the built-in defaults then)
  let loaded: LoadedConfig;
  try {
    loaded = ctx.config();
  } catch (err) {
    if (!(err instanceof ExitError) || err.exitCode !== EXIT.config) throw err;
    loaded = loadConfig({ defaultsOnly: true });
  }
  reconcileAll(state, loaded, ctx.now(), '_end-run');
  const r = state.guard(() => getRun(state, runId));
  const id = r ? runIdentity(r) : undefined;
  if (!r || !id || r.ended_at !== null) return { data: { run_id: runId }, exitCode: EXIT.ok };
  const res = await endTree(id, { runId, graceMs });
  state.write(() =>
    state.event({
      command: '_end-run',
      kind: 'run.timeout',
      subject: r.name,
      reason: `${runId} ran past its timeout: ${res.graceful ? 'ended by TERM' : 'KILLed after the grace'}${res.swept.length ? `, swept ${res.swept.length} escaped` : ''}`,
      data: { ...endJson(runId, res) },
    }),
  );
  return { data: endJson(runId, res), exitCode: res.survivors.length ? EXIT.failed : EXIT.ok };
}

export function render(r: { run_id: string }, _ui: Ui): string {
  return `ended ${r.run_id}`;
}
