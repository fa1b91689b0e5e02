/**
 * env-gc's I/O shell: for each environment, gather the facts (liveness, ports, users, what its
 * worktree holds), ask core/env-gc/plan.ts, remove or refuse, record it; then report worktree
 * folders git no longer knows. One collector at a time (a second returns `skipped`). Shared by
 * `agentctl env-gc` and `doctor --fix`.
 */
import { releaseLock, takeLock } from '../lock.js';
import type { Ctx } from '../ctx.js';
import { allEnvs, dropEnv, dueReason, envLiveness, type EnvRow, envUsers, orphanWorktrees, removeWorktree, worktreeProblems } from '../envs.js';
import { leasesOf } from '../ports/leases.js';
import type { State } from '../state.js';
import { type DueEnv, excusedLock, type GcAction, type GcResult, planEnvGc, REFUSAL_EVENT_INTERVAL_MS, refusedEvent, removedEvent, worktreeParents, worktreeToCheck } from './plan.js';

export interface EnvGcOptions {
  /** say what would go, remove nothing (no lock, no records). @default false */
  readonly dryRun?: boolean | undefined;
  /** remove worktrees holding unsaved, ignored or unpushed work, or locked. @default false */
  readonly force?: boolean | undefined;
  /** told how far it is (environments looked at, of all), before each and at the end: for a status line */
  readonly onProgress?: ((checked: number, total: number) => void) | undefined;
}

const LOCK = 'env-gc.lock';

/** Remove the environments that are due, refusing the ones whose removal would lose work or pull a worktree from under a live process. */
export async function envGc(ctx: Ctx, o: EnvGcOptions = {}): Promise<GcResult> {
  const dry = Boolean(o.dryRun);
  const force = Boolean(o.force);
  const state = ctx.state();
  // one collector at a time; a lock whose holder died is taken over
  const holder = dry ? undefined : takeLock(state, LOCK);
  if (holder) return { dry_run: dry, skipped: `another env-gc (PID ${holder.pid}) is running`, actions: [], pruned_repos: [], pruned_worktrees: [], orphan_worktrees: [] };
  try {
    const now = ctx.now();
    const actions: GcAction[] = [];
    const pruned = new Set<string>();
    const prunedTrees: string[] = [];
    const envs = state.guard(() => allEnvs(state));
    for (const [i, e] of envs.entries()) {
      o.onProgress?.(i, envs.length);
      const due = gatherDue(state, e, now);
      if (!due) continue;
      const a = applyOne(state, due, { dry, force, now });
      actions.push(a.action);
      if (a.pruned) {
        pruned.add(a.pruned.repo);
        prunedTrees.push(a.pruned.worktree);
      }
    }
    o.onProgress?.(envs.length, envs.length);
    const orphans: string[] = [];
    for (const [repo, parents] of worktreeParents(envs)) orphans.push(...orphanWorktrees(repo, parents));
    return { dry_run: dry, actions, pruned_repos: [...pruned], pruned_worktrees: prunedTrees, orphan_worktrees: orphans };
  } finally {
    if (!dry) releaseLock(state, LOCK);
  }
}

/** The facts of one environment, when it is due; the costly ones (users, git) only then. */
function gatherDue(state: State, e: EnvRow, now: number): DueEnv | undefined {
  const live = envLiveness(e);
  const reason = dueReason(e, now, live);
  if (!reason) return undefined;
  const ports = state.guard(() => leasesOf(state, { kind: 'env', id: e.name }));
  const inUse = state.guard(() => envUsers(state, e));
  const tree = worktreeToCheck(e);
  return { env: e, reason, live, ports, inUse, worktreeProblems: tree ? worktreeProblems(tree.repo, tree.worktree, { excuseLock: excusedLock(live) }) : [] };
}

const gcAction = (d: DueEnv, action: GcAction['action'], problems: readonly string[], inUse: GcAction['in_use'] = [], ports = d.ports): GcAction => ({
  name: d.env.name,
  reason: d.reason,
  action,
  ports,
  worktree: d.env.worktree,
  problems,
  in_use: inUse,
});

/** Act on one due environment's decision. */
function applyOne(state: State, d: DueEnv, o: { dry: boolean; force: boolean; now: number }): { action: GcAction; pruned?: { repo: string; worktree: string } } {
  const e = d.env;
  const decision = planEnvGc(d, o.force);
  if (decision.kind === 'refuse') {
    if (!o.dry) {
      state.write(() => {
        const recent = state.db.prepare("SELECT 1 FROM events WHERE kind = 'env.gc_refused' AND subject = ? AND ts >= ? LIMIT 1").get(e.name, o.now - REFUSAL_EVENT_INTERVAL_MS);
        if (!recent) state.event(refusedEvent(d, decision));
      });
    }
    return { action: gcAction(d, 'refused', decision.problems, decision.inUse) };
  }
  if (o.dry) return { action: gcAction(d, 'would_remove', decision.problems) };
  let pruned: { repo: string; worktree: string } | undefined;
  if (e.repo && e.worktree) {
    const r = removeWorktree(e.repo, e.worktree, o.force, { unlock: decision.unlock });
    if (!r.ok) return { action: gcAction(d, 'refused', [`git worktree remove failed: ${r.message}`]) };
    if (r.pruned) pruned = { repo: e.repo, worktree: e.worktree };
  }
  const released = state.write(() => {
    const p = dropEnv(state, e);
    state.event(removedEvent(d, p, o.force, decision.problems));
    return p;
  });
  return { action: gcAction(d, 'removed', decision.problems, [], released), ...(pruned ? { pruned } : {}) };
}
