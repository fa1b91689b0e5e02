/** agentctl up: start the config's [[agents]] entries that should run and do not; cron-safe. */
import type { Ctx, Outcome, Ui } from '../core/ctx.js';
import { EXIT, UsageError } from '../core/errors.js';
import { downMarker, orphanedFleetRuns, upFleet, type UpRow } from '../core/agents/apply.js';
import { BAD_STATUSES, withRequired } from '../core/agents/plan.js';
import { checkName } from '../core/names.js';
import { endRun } from '../core/runs/end.js';
import { printable } from '../core/text.js';
import { formatDuration, parseDuration } from '../core/units.js';
import type { CommandDecl, OptionValues } from '../core/declaration.js';
import { noteFleetSync } from '../core/fleet/fleet.js';

export const declaration: CommandDecl = {
  name: 'up',
  description: "start the config's [[agents]] entries that should run and do not, through spawn's admission; leave running ones alone",
  args: [{ name: '[names...]', help: '[[agents]] entries (and what they require); default: every entry' }],
  options: [
    { flags: '--dry-run', help: 'say what would start, restart or be pruned; change nothing' },
    { flags: '--restart-changed', help: 'restart runs whose entry changed since they started (drift)' },
    { flags: '--prune', help: 'stop runs up started from this config whose entry is no longer in it' },
    { flags: '--grace <duration>', help: 'TERM-to-KILL grace for --restart-changed and --prune', default: '30s' },
  ],
  examples: ['agentctl up', 'agentctl up --dry-run', 'agentctl up auto-confirm --restart-changed', '* * * * * cd /srv/fleet && agentctl --quiet up --prune   # crontab'],
  exitCodes: '0 every entry running, started, waiting (backoff), exited as its restart policy allows, or down; 1 any refused or failed; 78 the config is invalid.',
};

export interface UpResult {
  readonly dry_run: boolean;
  /** the file the entries came from, or null when the config has none */
  readonly file: string | null;
  readonly agents: readonly UpRow[];
  /** runs --prune stopped (or would stop) */
  readonly pruned: ReadonlyArray<{ run_id: string; name: string; pid: number | null; graceful: boolean | null }>;
}

export async function run(opts: OptionValues, args: readonly string[], ctx: Ctx): Promise<Outcome<UpResult>> {
  const names = args.map((a) => checkName(a, 'up NAME'));
  const graceMs = parseDuration(String(opts.grace), '--grace');
  const dryRun = Boolean(opts.dryRun);
  const loaded = ctx.config();
  const fleet = loaded.config.fleetAgents;
  const unknown = names.filter((n) => !fleet.some((s) => s.name === n));
  if (unknown.length) {
    const known = fleet.map((s) => s.name).join(', ') || 'none: the config has no [[agents]] entries';
    throw new UsageError(`up: no [[agents]] entry named ${unknown.map((u) => JSON.stringify(u)).join(', ')}; entries: ${known}`);
  }
  const specs = names.length ? withRequired(fleet, names) : fleet;
  const agents = await upFleet(ctx, loaded, specs, { dryRun, restartChanged: Boolean(opts.restartChanged), graceMs, revive: names.length > 0 });
  const pruned = opts.prune ? await prune(ctx, dryRun, graceMs) : [];
  const bad = agents.filter((a) => BAD_STATUSES.has(a.status));
  const data: UpResult = { dry_run: dryRun, file: fleet[0]?.file ?? null, agents, pruned };
  if (!dryRun) {
    const state = ctx.state();
    await noteFleetSync(ctx, state, loaded, ctx.now()); // renew this host's fleet leases, release ended runs'
    const started = agents.filter((a) => a.status === 'started').map((a) => a.name);
    if (started.length || bad.length || pruned.length) {
      state.write(() =>
        state.event({
          command: 'up',
          kind: 'up.done',
          subject: data.file ?? 'fleet',
          reason: `${started.length} started, ${bad.length} refused or failed, ${pruned.length} pruned, of ${agents.length}`,
          data: { started, bad: bad.map((b) => b.name), pruned: pruned.map((p) => p.name) },
        }),
      );
    }
  }
  if (!bad.length) return { data };
  return { data, exitCode: EXIT.failed, message: `up: ${bad.map((b) => `${b.name} ${b.status}: ${b.detail}`).join('; ')}` };
}

async function prune(ctx: Ctx, dryRun: boolean, graceMs: number): Promise<UpResult['pruned'][number][]> {
  const state = ctx.state();
  const loaded = ctx.config();
  const runs = orphanedFleetRuns(state, loaded);
  if (dryRun) return runs.map((r) => ({ run_id: r.id, name: r.name, pid: r.pid, graceful: null }));
  const why = `pruned by agentctl up: its [[agents]] entry is no longer in the config (grace ${formatDuration(graceMs)})`;
  const ended = await Promise.all(runs.map((r) => endRun(state, loaded, r, graceMs, { timedOut: false, why, command: 'up' })));
  // a pruned name is gone from the file: its down mark goes with it
  state.write(() => runs.forEach((r) => state.db.prepare('DELETE FROM kv WHERE key = ?').run(downMarker(r.name))));
  return runs.map((r, i) => ({ run_id: r.id, name: r.name, pid: r.pid, graceful: ended[i] ? ended[i].graceful && ended[i].survivors.length === 0 : null }));
}

const STATUS_COLOR: Record<string, 'green' | 'yellow' | 'red' | 'dim'> = {
  running: 'dim',
  started: 'green',
  waiting: 'yellow',
  drift: 'yellow',
  refused: 'red',
  failed: 'red',
  exited: 'dim',
  down: 'dim',
};

export function render(r: UpResult, ui: Ui): string {
  if (!r.agents.length && !r.pruned.length) return 'no [[agents]] entries in the config';
  const rows = r.agents.map((a) => {
    const color = STATUS_COLOR[a.status];
    const status = a.status.replace('_', ' ');
    const when = a.retry_at ? ` (at ${a.retry_at.slice(11, 19)} UTC)` : '';
    return [a.entry, a.name, color ? ui.c[color](status) : status, `${a.detail}${when}`];
  });
  const out = rows.length ? [ui.table(['entry', 'instance', 'status', 'detail'], rows, { detail: 'wrap', entry: 'cut', instance: 'cut' })] : [];
  for (const p of r.pruned) {
    const how = p.graceful === null ? '' : p.graceful ? ', ended gracefully' : ', forced';
    out.push(`${r.dry_run ? 'would prune' : 'pruned'}: ${printable(p.name)} (run ${p.run_id}${p.pid !== null ? `, PID ${p.pid}` : ''}${how})`);
  }
  return out.join('\n');
}
