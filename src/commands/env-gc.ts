/**
 * agentctl env-gc: remove environments past their TTL, whose owner died, or that a killed
 * env create left half-created; release their ports, remove their worktrees with git
 * (refusing unsafe ones unless --force, and one a live process works in always), drop the
 * git metadata of their own missing worktrees only, and report worktree folders git no
 * longer knows. One env-gc at a time: a second one exits 0.
 */
import type { Ctx, Outcome, Ui } from '../core/ctx.js';
import { allEnvs, badWorktreePath, dropEnv, type EnvUser, envUsers, gcReason, halfCreated, orphanWorktrees, removeWorktree, worktreeParent, worktreeProblems } from '../core/envs.js';
import { releaseLock, takeLock } from '../core/control.js';
import { leasesOf } from '../core/ports.js';
import type { CommandDecl } from '../core/declaration.js';

export const declaration: CommandDecl = {
  name: 'env-gc',
  description: 'remove environments past their TTL or whose owner died: ports, and worktrees no live process uses',
  options: [
    { flags: '--dry-run', help: 'say what would be removed, change nothing' },
    { flags: '--force', help: 'also remove worktrees with uncommitted, unpushed, ignored or locked work (never one in use)' },
  ],
  examples: ['agentctl env-gc --dry-run', '*/5 * * * * agentctl env-gc --quiet', 'agentctl env-gc --json'],
};

export interface GcAction {
  readonly name: string;
  readonly reason: string;
  readonly action: 'removed' | 'would_remove' | 'refused';
  readonly ports: readonly number[];
  readonly worktree: string | null;
  readonly problems: readonly string[];
  /** live processes working in it: refused whatever --force says */
  readonly in_use: readonly EnvUser[];
}

export interface GcResult {
  readonly dry_run: boolean;
  readonly skipped?: string;
  readonly actions: readonly GcAction[];
  /** repositories in which metadata of a removed environment's missing worktree was dropped */
  readonly pruned_repos: readonly string[];
  /** those worktree paths */
  readonly pruned_worktrees: readonly string[];
  readonly orphan_worktrees: readonly string[];
}

const LOCK = 'env-gc.lock';

export async function run(opts: Record<string, unknown>, _args: readonly string[], ctx: Ctx): Promise<Outcome<GcResult>> {
  const dry = Boolean(opts.dryRun);
  const force = Boolean(opts.force);
  const state = ctx.state();
  // one collector at a time; a lock whose holder died is taken over
  const holder = dry ? undefined : takeLock(state, LOCK);
  if (holder) return { data: { dry_run: dry, skipped: `another env-gc (PID ${holder.pid}) is running`, actions: [], pruned_repos: [], pruned_worktrees: [], orphan_worktrees: [] } };
  try {
    const now = ctx.now();
    const actions: GcAction[] = [];
    const repos = new Map<string, Set<string>>(); // repo -> worktree parent folders
    const pruned = new Set<string>();
    const prunedTrees: string[] = [];
    for (const e of state.guard(() => allEnvs(state))) {
      if (e.repo && e.worktree) (repos.get(e.repo) ?? repos.set(e.repo, new Set()).get(e.repo)!).add(worktreeParent(e.worktree));
      const reason = gcReason(e, now);
      if (!reason) continue;
      const ports = state.guard(() => leasesOf(state, { kind: 'env', id: e.name }));
      // a live process working in it keeps it, --force or not: removing its folder would pull
      // the floor from under a running agent, and its ports with it
      const inUse = state.guard(() => envUsers(state, e));
      const half = halfCreated(e);
      const badPath = e.worktree ? badWorktreePath(e.worktree) : undefined;
      // git's own 'initializing' lock, left by the git worktree add a killed env create interrupted
      const excuseLock = half ? 'initializing' : undefined;
      const problems = [
        ...inUse.map((u) => `in use by PID ${u.pid}: ${u.why}`),
        ...(badPath ? [badPath] : []),
        ...(e.repo && e.worktree && !badPath ? worktreeProblems(e.repo, e.worktree, { excuseLock }) : []),
      ];
      const blocked = inUse.length > 0 || badPath !== undefined;
      if (problems.length && (!force || blocked)) {
        actions.push({ name: e.name, reason, action: 'refused', ports, worktree: e.worktree, problems, in_use: inUse });
        // once an hour per environment is enough: cron runs env-gc every few minutes
        if (!dry) {
          const fix = blocked ? (inUse.length ? 'stop those processes first; --force does not override this' : 'fix or remove the row by hand') : 'pass --force to remove anyway';
          state.write(() => {
            const recent = state.db.prepare("SELECT 1 FROM events WHERE kind = 'env.gc_refused' AND subject = ? AND ts >= ? LIMIT 1").get(e.name, now - 3_600_000);
            if (!recent) state.event({ command: 'env-gc', kind: 'env.gc_refused', subject: e.name, reason: `${reason}, but ${e.worktree ? `worktree ${e.worktree}` : 'the environment'} has ${problems.join('; ')}; ${fix}`, data: { in_use: inUse } });
          });
        }
        continue;
      }
      if (dry) {
        actions.push({ name: e.name, reason, action: 'would_remove', ports, worktree: e.worktree, problems, in_use: [] });
        continue;
      }
      if (e.repo && e.worktree) {
        const r = removeWorktree(e.repo, e.worktree, force, { unlock: excuseLock });
        if (!r.ok) {
          actions.push({ name: e.name, reason, action: 'refused', ports, worktree: e.worktree, problems: [`git worktree remove failed: ${r.message}`], in_use: [] });
          continue;
        }
        if (r.pruned) {
          pruned.add(e.repo);
          prunedTrees.push(e.worktree);
        }
      }
      const released = state.write(() => {
        const p = dropEnv(state, e);
        state.event({ command: 'env-gc', kind: 'env.removed', subject: e.name, reason: `${reason}; released ports ${p.join(', ') || 'none'}${e.worktree ? `; removed worktree ${e.worktree}` : ''}${force && problems.length ? ` (--force: ${problems.join('; ')})` : ''}`, data: { ports: p, worktree: e.worktree } });
        return p;
      });
      actions.push({ name: e.name, reason, action: 'removed', ports: released, worktree: e.worktree, problems, in_use: [] });
    }
    const orphans: string[] = [];
    for (const [repo, parents] of repos) orphans.push(...orphanWorktrees(repo, parents));
    return { data: { dry_run: dry, actions, pruned_repos: [...pruned], pruned_worktrees: prunedTrees, orphan_worktrees: orphans } };
  } finally {
    if (!dry) releaseLock(state, LOCK);
  }
}

export function render(r: GcResult, ui: Ui): string {
  if (r.skipped) return `env-gc: ${r.skipped}; nothing done`;
  const lines: string[] = [];
  for (const a of r.actions) {
    const what = a.action === 'removed' ? 'removed' : a.action === 'would_remove' ? 'would remove' : ui.c.red('refused');
    lines.push(`${what} ${a.name}: ${a.reason}${a.ports.length ? `; ports ${a.ports.join(', ')}` : ''}${a.worktree ? `; worktree ${a.worktree}` : ''}${a.problems.length ? ` (${a.problems.join('; ')}${a.action === 'refused' ? (a.in_use.length ? '; in use: --force does not override this' : '; --force removes it anyway') : ''})` : ''}`);
  }
  if (r.pruned_worktrees.length) lines.push(`git metadata dropped for missing worktrees: ${r.pruned_worktrees.join(', ')}`);
  if (r.orphan_worktrees.length) lines.push(`worktree folders git no longer knows: ${r.orphan_worktrees.join(', ')}`);
  return lines.join('\n');
}
