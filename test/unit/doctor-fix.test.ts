import { describe, expect, it } from 'vitest';
import { dedupeLine, envGcLine, reapLine, stalePidFilesLine } from '../../src/core/doctor-fix.js';
import type { GcAction } from '../../src/core/env-gc/plan.js';

const gc = (action: GcAction['action']): GcAction => ({ name: 'e', reason: 'expired', action, ports: [], worktree: null, problems: [], in_use: [] });

describe('doctor --fix lines', () => {
  it('env-gc: removed, and refused with where to look', () => {
    expect(envGcLine({ dry_run: false, actions: [gc('removed'), gc('removed')], pruned_repos: [], pruned_worktrees: [], orphan_worktrees: [] })).toBe('env-gc: 2 environment(s) removed');
    expect(envGcLine({ dry_run: false, actions: [gc('refused')], pruned_repos: [], pruned_worktrees: [], orphan_worktrees: [] })).toBe(
      'env-gc: 0 environment(s) removed, 1 refused (worktrees in use or holding unsaved, ignored or unpushed work; see agentctl env-gc --dry-run)',
    );
    // another env-gc held the lock: nothing done, nothing claimed
    expect(envGcLine({ dry_run: false, skipped: 'another env-gc (PID 9) is running', actions: [], pruned_repos: [], pruned_worktrees: [], orphan_worktrees: [] })).toBe(
      'env-gc: 0 environment(s) removed',
    );
  });

  it('dedupe counts duplicates, reap counts only what it ended', () => {
    const dup = { pid: 1, command: 'c', version: 1, pids: [1], action: 'ended' as const };
    expect(
      dedupeLine({
        dry_run: false,
        across_folders: false,
        keep_policy: 'newest',
        groups: [{ identity: 'i', folder: null, keep: { pid: 2, command: 'c', version: 1 }, duplicates: [dup, { ...dup, pid: 3, action: 'failed' }] }],
        runs: [],
      }),
    ).toBe('dedupe-workers: 2 duplicate(s) ended');
    expect(
      reapLine({
        dry_run: false,
        findings: [
          { kind: 'gone', pid: 1, run_id: 'r1', name: 'a', reason: 'x', action: 'closed' },
          { kind: 'timeout', pid: 2, run_id: 'r2', name: 'b', reason: 'x', action: 'ended' },
          { kind: 'hung', pid: 3, run_id: 'r3', name: 'c', reason: 'x', action: 'failed' },
        ],
      }),
    ).toBe('reap: 1 run(s) ended');
  });

  it('stale PID files only when there were some', () => {
    expect(stalePidFilesLine(0)).toBeUndefined();
    expect(stalePidFilesLine(3)).toBe('removed 3 stale PID file(s)');
  });
});
