/**
 * agentctl env-gc: remove environments past their TTL, whose owner died, or that a killed
 * env create left half-created; release their ports, remove their worktrees with git
 * (refusing unsafe ones unless --force, and one a live process works in always), drop the
 * git metadata of their own missing worktrees only, and report worktree folders git no
 * longer knows. One env-gc at a time: a second one exits 0.
 */
import type { Ctx, Outcome, Ui } from '../core/ctx.js';
import { envGc } from '../core/env-gc/apply.js';
import type { GcResult } from '../core/env-gc/plan.js';
import { envGcText } from '../core/progress.js';
import type { CommandDecl, OptionValues } from '../core/declaration.js';

export const declaration: CommandDecl = {
  name: 'env-gc',
  description: 'remove environments past their TTL or whose owner died: ports, and worktrees no live process uses',
  options: [
    { flags: '--dry-run', help: 'say what would be removed, change nothing' },
    { flags: '--force', help: 'also remove worktrees with uncommitted, unpushed, ignored or locked work (never one in use)' },
  ],
  examples: ['agentctl env-gc --dry-run', '*/5 * * * * agentctl env-gc --quiet', 'agentctl env-gc --json'],
};

export async function run(opts: OptionValues, _args: readonly string[], ctx: Ctx): Promise<Outcome<GcResult>> {
  const dryRun = Boolean(opts.dryRun);
  // a status line on a terminal while many environments go: how far it is
  const progress = ctx.progress();
  const onProgress = (checked: number, total: number) => progress.update(envGcText(checked, total, dryRun));
  return { data: await envGc(ctx, { dryRun, force: Boolean(opts.force), onProgress }).finally(() => progress.done()) };
}

export function render(r: GcResult, ui: Ui): string {
  if (r.skipped) return `env-gc: ${r.skipped}; nothing done`;
  const lines: string[] = [];
  for (const a of r.actions) {
    const what = a.action === 'removed' ? 'removed' : a.action === 'would_remove' ? 'would remove' : ui.c.red('refused');
    lines.push(
      `${what} ${a.name}: ${a.reason}${a.ports.length ? `; ports ${a.ports.join(', ')}` : ''}${a.worktree ? `; worktree ${a.worktree}` : ''}${a.problems.length ? ` (${a.problems.join('; ')}${a.action === 'refused' ? (a.in_use.length ? '; in use: --force does not override this' : '; --force removes it anyway') : ''})` : ''}`,
    );
  }
  if (r.pruned_worktrees.length) lines.push(`git metadata dropped for missing worktrees: ${r.pruned_worktrees.join(', ')}`);
  if (r.orphan_worktrees.length) lines.push(`worktree folders git no longer knows: ${r.orphan_worktrees.join(', ')}`);
  return lines.join('\n');
}
