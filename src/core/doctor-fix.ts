/**
 * doctor --fix: the safe remedies, in order. Record dead runs, drop stale PID files, collect
 * environments (env-gc without --force); with --fix-processes also dedupe-workers and reap with
 * their defaults. Each step runs the same core plan and apply as its own command; the lines
 * that say what each step did are pure (the *Line functions).
 */
import { removeFile } from './fsutil.js';
import type { LoadedConfig } from './config/types.js';
import type { Ctx } from './ctx.js';
import { dedupe } from './dedupe/apply.js';
import type { DedupeResult } from './dedupe/plan.js';
import { stalePidFiles } from './doctor/checks.js';
import { envGc } from './env-gc/apply.js';
import type { GcResult } from './env-gc/plan.js';
import { reap } from './reap/apply.js';
import type { ReapResult } from './reap/plan.js';
import { reconcileAll } from './runs/reconcile.js';
import type { State } from './state.js';

export const NOTHING_FIXED = 'nothing fixed: the state or the configuration is unusable';
export const RECONCILED_LINE = 'recorded runs whose process ended (reap of dead runs)';

export const stalePidFilesLine = (removed: number) => (removed ? `removed ${removed} stale PID file(s)` : undefined);

export function envGcLine(r: GcResult): string {
  const removed = r.actions.filter((a) => a.action === 'removed').length;
  const refused = r.actions.filter((a) => a.action === 'refused').length;
  return `env-gc: ${removed} environment(s) removed${refused ? `, ${refused} refused (worktrees in use or holding unsaved, ignored or unpushed work; see agentctl env-gc --dry-run)` : ''}`;
}

export const dedupeLine = (r: DedupeResult) => `dedupe-workers: ${r.groups.reduce((n, g) => n + g.duplicates.length, 0)} duplicate(s) ended`;

export const reapLine = (r: ReapResult) => `reap: ${r.findings.filter((f) => f.action === 'ended').length} run(s) ended`;

/** Apply the safe remedies; processes (duplicates, overdue and hung runs) only when asked. Returns what was done, one line a step. */
export async function applyFixes(ctx: Ctx, facts: { readonly state: State | undefined; readonly config: LoadedConfig | undefined }, withProcesses: boolean): Promise<string[]> {
  const { state, config } = facts;
  if (!state || !config) return [NOTHING_FIXED];
  const actions: string[] = [];
  reconcileAll(state, config, ctx.now(), 'doctor');
  actions.push(RECONCILED_LINE);
  // after reconcile, which removes the PID files of the runs it closed
  const stale = stalePidFiles(state);
  for (const f of stale) removeFile(f);
  const staleLine = stalePidFilesLine(stale.length);
  if (staleLine) actions.push(staleLine);
  actions.push(envGcLine(await envGc(ctx)));
  if (withProcesses) {
    actions.push(dedupeLine(await dedupe(ctx)));
    actions.push(reapLine(await reap(ctx)));
  }
  state.write(() => state.event({ command: 'doctor', kind: 'doctor.fix', reason: actions.join('; ') }));
  return actions;
}
