/**
 * env-gc's rules, pure: which environments are due, which of those may go and which are refused
 * (and what would fix that), what to record. Facts come in (the row, whether its creator and
 * owner still run, its ports, who works in it, what removing its worktree would lose); a
 * decision with its reason goes out. core/env-gc/apply.ts gathers the facts and removes.
 */
import { badWorktreePath, type EnvLiveness, type EnvRow, type EnvUser, worktreeParent } from '../envs.js';
import type { EventInput } from '../state.js';

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

/** What env-gc knows of one due environment before deciding. */
export interface DueEnv {
  readonly env: EnvRow;
  /** why it is due (see dueReason) */
  readonly reason: string;
  readonly live: EnvLiveness;
  readonly ports: readonly number[];
  /** live processes working in it */
  readonly inUse: readonly EnvUser[];
  /** what removing its worktree would lose (worktreeProblems, asked with `excuseLock`); empty without a worktree or with a bad path */
  readonly worktreeProblems: readonly string[];
}

export type GcDecision =
  | { readonly kind: 'refuse'; readonly problems: readonly string[]; readonly inUse: readonly EnvUser[]; readonly fix: string }
  /** remove it; `unlock`: git's own lock reason to lift first */
  | { readonly kind: 'remove'; readonly problems: readonly string[]; readonly unlock: string | undefined };

/**
 * The lock reason that is no problem for this env: git's own `initializing`, left by the `git
 * worktree add` that a killed env create interrupted.
 */
export const excusedLock = (live: EnvLiveness) => (live.halfCreated ? 'initializing' : undefined);

/** Should the worktree's contents be asked about at all: it has a repo and a path on record that is safe to hand to git. */
export const worktreeToCheck = (e: EnvRow): { repo: string; worktree: string } | undefined =>
  e.repo && e.worktree && !badWorktreePath(e.worktree) ? { repo: e.repo, worktree: e.worktree } : undefined;

/**
 * Remove or refuse one due environment. A live process working in it, or a worktree path on
 * record that is not safe to hand to git, refuses it whatever --force says; unsaved, ignored or
 * unpushed work in its worktree, or a lock, refuses it unless --force.
 */
export function planEnvGc(d: DueEnv, force: boolean): GcDecision {
  const e = d.env;
  const badPath = e.worktree ? badWorktreePath(e.worktree) : undefined;
  const problems = [...d.inUse.map((u) => `in use by PID ${u.pid}: ${u.why}`), ...(badPath ? [badPath] : []), ...d.worktreeProblems];
  const blocked = d.inUse.length > 0 || badPath !== undefined;
  if (problems.length && (!force || blocked)) {
    const fix = blocked ? (d.inUse.length ? 'stop those processes first; --force does not override this' : 'fix or remove the row by hand') : 'pass --force to remove anyway';
    return { kind: 'refuse', problems, inUse: d.inUse, fix };
  }
  return { kind: 'remove', problems, unlock: excusedLock(d.live) };
}

/** A refusal is recorded once an hour per environment: cron runs env-gc every few minutes. */
export const REFUSAL_EVENT_INTERVAL_MS = 3_600_000;

export function refusedEvent(d: DueEnv, r: Extract<GcDecision, { kind: 'refuse' }>): EventInput {
  const e = d.env;
  return {
    command: 'env-gc',
    kind: 'env.gc_refused',
    subject: e.name,
    reason: `${d.reason}, but ${e.worktree ? `worktree ${e.worktree}` : 'the environment'} has ${r.problems.join('; ')}; ${r.fix}`,
    data: { in_use: r.inUse },
  };
}

export function removedEvent(d: DueEnv, released: readonly number[], force: boolean, problems: readonly string[]): EventInput {
  const e = d.env;
  return {
    command: 'env-gc',
    kind: 'env.removed',
    subject: e.name,
    reason: `${d.reason}; released ports ${released.join(', ') || 'none'}${e.worktree ? `; removed worktree ${e.worktree}` : ''}${force && problems.length ? ` (--force: ${problems.join('; ')})` : ''}`,
    data: { ports: released, worktree: e.worktree },
  };
}

/** Each repository's folders that hold its environments' worktrees: where to look for worktrees git no longer knows. */
export function worktreeParents(envs: readonly EnvRow[]): Map<string, Set<string>> {
  const repos = new Map<string, Set<string>>();
  for (const e of envs) if (e.repo && e.worktree) (repos.get(e.repo) ?? repos.set(e.repo, new Set()).get(e.repo)!).add(worktreeParent(e.worktree));
  return repos;
}
