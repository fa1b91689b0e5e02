/** agentctl down: stop the config's [[agents]] entries gracefully (stop's routine), and keep a cron `up` from starting them again. */
import type { Ctx, Outcome, Ui } from '../core/ctx.js';
import { EXIT, UsageError } from '../core/errors.js';
import { downMarker } from '../core/agents/apply.js';
import { instanceNames } from '../core/agents/plan.js';
import { checkName } from '../core/names.js';
import { endRun } from '../core/runs/end.js';
import { reconcileAll } from '../core/runs/reconcile.js';
import { liveRuns } from '../core/runs/registry.js';
import { formatDuration, parseDuration } from '../core/units.js';
import type { CommandDecl, OptionValues } from '../core/declaration.js';

export const declaration: CommandDecl = {
  name: 'down',
  description: "stop the config's [[agents]] entries gracefully (TERM, --grace, KILL) and keep up from starting them until up NAME",
  args: [{ name: '[names...]', help: '[[agents]] entries; default: every entry' }],
  options: [
    // the same grace as stop: incident 4's "wait up to 30 s for running agents"
    { flags: '--grace <duration>', help: 'how long to wait after TERM before KILL', default: '30s' },
    { flags: '--dry-run', help: 'say what would be stopped; change nothing' },
  ],
  examples: ['agentctl down', 'agentctl down auto-confirm --grace 10s', 'agentctl down --dry-run --json'],
  exitCodes: '0 every instance ended or was not running; 1 a process could not be ended; 78 the config is invalid.',
};

export interface DownRow {
  readonly entry: string;
  readonly name: string;
  /** graceful, forced (KILL after the grace), failed (survivors), not_running, or would_stop under --dry-run */
  readonly status: 'graceful' | 'forced' | 'failed' | 'not_running' | 'would_stop';
  readonly run_id: string | null;
  readonly pid: number | null;
}

export interface DownResult {
  readonly dry_run: boolean;
  readonly agents: readonly DownRow[];
  readonly duration_ms: number;
}

export async function run(opts: OptionValues, args: readonly string[], ctx: Ctx): Promise<Outcome<DownResult>> {
  const names = args.map((a) => checkName(a, 'down NAME'));
  const graceMs = parseDuration(String(opts.grace), '--grace');
  const dryRun = Boolean(opts.dryRun);
  const loaded = ctx.config();
  const fleet = loaded.config.fleetAgents;
  const unknown = names.filter((n) => !fleet.some((s) => s.name === n));
  if (unknown.length) throw new UsageError(`down: no [[agents]] entry named ${unknown.map((u) => JSON.stringify(u)).join(', ')}; entries: ${fleet.map((s) => s.name).join(', ') || 'none'}`);
  const specs = names.length ? fleet.filter((s) => names.includes(s.name)) : fleet;
  const state = ctx.state();
  const started = ctx.now();
  if (!dryRun) reconcileAll(state, loaded, started, 'down');
  const live = liveRuns(state);
  const targets = specs.flatMap((s) => instanceNames(s).map((name) => ({ entry: s.name, name, run: live.find((r) => r.name === name && r.pid !== null) })));
  if (!dryRun) state.write(() => targets.forEach((t) => state.setKv(downMarker(t.name), { at: started }, started)));
  const why = `stopped by agentctl down (grace ${formatDuration(graceMs)})`;
  const rows = await Promise.all(
    targets.map(async (t): Promise<DownRow> => {
      const base = { entry: t.entry, name: t.name, run_id: t.run?.id ?? null, pid: t.run?.pid ?? null };
      if (!t.run) return { ...base, status: 'not_running' };
      if (dryRun) return { ...base, status: 'would_stop' };
      const e = await endRun(state, loaded, t.run, graceMs, { timedOut: false, why, command: 'down' });
      if (!e) return { ...base, status: 'not_running' };
      return { ...base, status: e.survivors.length ? 'failed' : e.graceful ? 'graceful' : 'forced' };
    }),
  );
  const duration = ctx.now() - started;
  const data: DownResult = { dry_run: dryRun, agents: rows, duration_ms: duration };
  if (!dryRun) {
    const ended = rows.filter((r) => r.run_id !== null);
    state.write(() =>
      state.event({
        command: 'down',
        kind: 'down.done',
        subject: names.join(',') || 'fleet',
        reason: `${ended.length} of ${rows.length} instances stopped in ${formatDuration(duration)}; up leaves them until up NAME`,
        data: { stopped: ended.map((r) => r.name), duration_ms: duration },
      }),
    );
  }
  const failed = rows.filter((r) => r.status === 'failed');
  if (!failed.length) return { data };
  return { data, exitCode: EXIT.failed, message: `down: could not end ${failed.map((f) => f.name).join(', ')}` };
}

export function render(r: DownResult, ui: Ui): string {
  if (!r.agents.length) return 'no [[agents]] entries in the config';
  const color = { graceful: 'green', forced: 'yellow', failed: 'red', not_running: 'dim', would_stop: 'dim' } as const;
  const rows = r.agents.map((a) => [a.entry, a.name, ui.c[color[a.status]](a.status.replace('_', ' ')), a.run_id ?? '-', a.pid ?? '-']);
  const out = [ui.table(['entry', 'instance', 'status', 'run', 'pid'], rows, { entry: 'cut', instance: 'cut' })];
  if (!r.dry_run && r.agents.some((a) => a.run_id !== null)) out.push(`shutdown took ${formatDuration(r.duration_ms)}`);
  return out.join('\n');
}
