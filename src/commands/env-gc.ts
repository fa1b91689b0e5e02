/**
 * agentctl env-gc: remove environments past their TTL or whose owner died; release their
 * ports, remove their worktrees with git (refusing unsafe ones unless --force), prune, and
 * report worktree folders git no longer knows. One env-gc at a time: a second one exits 0.
 */
import type { Outcome } from '../core/command.js';
import type { Ctx } from '../core/context.js';
import { allEnvs, dropEnv, gcReason, orphanWorktrees, pruneWorktrees, removeWorktree, worktreeParent, worktreeProblems } from '../core/envs.js';
import { releaseLock, takeLock } from '../core/control.js';
import type { Ui } from '../core/output.js';
import { leasesOf } from '../core/ports.js';

export interface GcAction {
  readonly name: string;
  readonly reason: string;
  readonly action: 'removed' | 'would_remove' | 'refused';
  readonly ports: readonly number[];
  readonly worktree: string | null;
  readonly problems: readonly string[];
}

export interface GcResult {
  readonly dry_run: boolean;
  readonly skipped?: string;
  readonly actions: readonly GcAction[];
  readonly pruned_repos: readonly string[];
  readonly orphan_worktrees: readonly string[];
}

const LOCK = 'env-gc.lock';

export async function run(opts: Record<string, unknown>, _args: readonly string[], ctx: Ctx): Promise<Outcome<GcResult>> {
  const dry = Boolean(opts.dryRun);
  const force = Boolean(opts.force);
  const state = ctx.state();
  // one collector at a time; a lock whose holder died is taken over
  const holder = dry ? undefined : takeLock(state, LOCK);
  if (holder) return { data: { dry_run: dry, skipped: `another env-gc (PID ${holder.pid}) is running`, actions: [], pruned_repos: [], orphan_worktrees: [] } };
  try {
    const now = ctx.now();
    const actions: GcAction[] = [];
    const repos = new Map<string, Set<string>>(); // repo -> worktree parent folders
    for (const e of state.guard(() => allEnvs(state))) {
      if (e.repo && e.worktree) (repos.get(e.repo) ?? repos.set(e.repo, new Set()).get(e.repo)!).add(worktreeParent(e.worktree));
      const reason = gcReason(e, now);
      if (!reason) continue;
      const ports = state.guard(() => leasesOf(state, { kind: 'env', id: e.name }));
      const problems = e.repo && e.worktree ? worktreeProblems(e.repo, e.worktree) : [];
      if (problems.length && !force) {
        actions.push({ name: e.name, reason, action: 'refused', ports, worktree: e.worktree, problems });
        // once an hour per environment is enough: cron runs env-gc every few minutes
        if (!dry) {
          state.write(() => {
            const recent = state.db.prepare("SELECT 1 FROM events WHERE kind = 'env.gc_refused' AND subject = ? AND ts >= ? LIMIT 1").get(e.name, now - 3_600_000);
            if (!recent) state.event({ command: 'env-gc', kind: 'env.gc_refused', subject: e.name, reason: `${reason}, but worktree ${e.worktree} has ${problems.join('; ')}; pass --force to remove anyway` });
          });
        }
        continue;
      }
      if (dry) {
        actions.push({ name: e.name, reason, action: 'would_remove', ports, worktree: e.worktree, problems });
        continue;
      }
      if (e.repo && e.worktree) {
        const r = removeWorktree(e.repo, e.worktree, force);
        if (!r.ok) {
          actions.push({ name: e.name, reason, action: 'refused', ports, worktree: e.worktree, problems: [`git worktree remove failed: ${r.message}`] });
          continue;
        }
      }
      const released = state.write(() => {
        const p = dropEnv(state, e);
        state.event({ command: 'env-gc', kind: 'env.removed', subject: e.name, reason: `${reason}; released ports ${p.join(', ') || 'none'}${e.worktree ? `; removed worktree ${e.worktree}` : ''}${force && problems.length ? ` (--force: ${problems.join('; ')})` : ''}`, data: { ports: p, worktree: e.worktree } });
        return p;
      });
      actions.push({ name: e.name, reason, action: 'removed', ports: released, worktree: e.worktree, problems });
    }
    const pruned: string[] = [];
    const orphans: string[] = [];
    for (const [repo, parents] of repos) {
      if (!dry) {
        pruneWorktrees(repo);
        pruned.push(repo);
      }
      orphans.push(...orphanWorktrees(repo, parents));
    }
    return { data: { dry_run: dry, actions, pruned_repos: pruned, orphan_worktrees: orphans } };
  } finally {
    if (!dry) releaseLock(state, LOCK);
  }
}

export function render(r: GcResult, ui: Ui): string {
  if (r.skipped) return `env-gc: ${r.skipped}; nothing done`;
  const lines: string[] = [];
  for (const a of r.actions) {
    const what = a.action === 'removed' ? 'removed' : a.action === 'would_remove' ? 'would remove' : ui.c.red('refused');
    lines.push(`${what} ${a.name}: ${a.reason}${a.ports.length ? `; ports ${a.ports.join(', ')}` : ''}${a.worktree ? `; worktree ${a.worktree}` : ''}${a.problems.length ? ` (${a.problems.join('; ')}${a.action === 'refused' ? '; --force removes it anyway' : ''})` : ''}`);
  }
  if (r.orphan_worktrees.length) lines.push(`worktree folders git no longer knows: ${r.orphan_worktrees.join(', ')}`);
  return lines.join('\n');
}
