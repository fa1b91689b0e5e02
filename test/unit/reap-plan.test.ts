import { describe, expect, it } from 'vitest';
import type { Ended } from '../../src/core/kill.js';
import type { ProcDetail } from '../../src/core/proc.js';
import {
  type Finding,
  leftoverRunFiles,
  type LiveRun,
  orphanCandidates,
  orphanFinding,
  planLost,
  planOrphans,
  planOverdue,
  planRunEnds,
  planShed,
  planZombies,
  reapEvents,
  runFinding,
  runLimit,
  staleProgressKeys,
  unmanagedAgents,
} from '../../src/core/reap/plan.js';
import type { RunRow } from '../../src/core/runs/registry.js';
import { runRow } from '../rows.js';

const NOW = 1_800_000_000_000;
const MIN = 60_000;

const run = (over: Partial<RunRow> = {}): RunRow => runRow({ started_at: NOW - 10 * MIN, pgid: over.pid ?? 4000, ...over });

function proc(over: Partial<ProcDetail> & { pid: number }): ProcDetail {
  const argv = over.argv ?? ['claude', '--print'];
  return { ppid: 1, pgid: over.pid, state: 'S', uid: 1000, startTicks: 500, cpuTicks: 0, comm: 'claude', argv, cmdline: argv.join(' '), ...over };
}

const ended = (over: Partial<Ended> = {}): Ended => ({ pid: 4000, graceful: true, forced: false, swept: [], survivors: [], duration_ms: 20, ...over });
const limits = { timeoutMs: 0, idleMs: 0 };
const live = (r: RunRow, over: Partial<LiveRun> = {}): LiveRun => ({ run: r, ours: true, ...over });

describe('planLost (rules 1-2)', () => {
  it('closes a gone run and a run whose PID was reused, and never asks to signal either', () => {
    const gone = run({ id: 'r00000a', pid: 4001 });
    const reused = run({ id: 'r00000b', pid: 4002 });
    const out = planLost(
      [
        { run: gone, fate: { kind: 'lost', why: 'process and supervisor are gone', reused: false } },
        { run: reused, fate: { kind: 'lost', why: 'reused', reused: true } },
      ],
      false,
    );
    expect(out.map((f) => [f.kind, f.run_id, f.action])).toEqual([
      ['gone', 'r00000a', 'closed'],
      ['pid_reused', 'r00000b', 'closed'],
    ]);
    expect(out[0]!.reason).toBe('process 4001 is gone: closed, PID file and ports released');
    expect(out[1]!.reason).toBe('PID 4002 now belongs to another process: closed, never signalled');
    expect(out.every((f) => f.ended === undefined)).toBe(true);
  });

  it('says would_close under --dry-run, and names the spawner that died before the process started', () => {
    const out = planLost([{ run: run({ pid: null, state: 'starting' }), fate: { kind: 'lost', why: 'the spawner died before the process started', reused: false } }], true);
    expect(out).toEqual([expect.objectContaining({ kind: 'gone', pid: null, action: 'would_close', reason: 'the spawner died before the process started: closed' })]);
  });

  it('leaves alone a run alive, one whose supervisor is recording its exit, one a stop already ended (stop marker: reconcile records it as a stop), one being adopted', () => {
    const r = run();
    expect(
      planLost(
        [
          { run: r, fate: { kind: 'alive' } },
          { run: r, fate: { kind: 'wait', why: 'its supervisor is recording the exit' } },
          { run: r, fate: { kind: 'exited', rc: 143, cpuMs: null, endedAt: NOW, timedOut: false } },
          { run: r, fate: { kind: 'adopt', child: { pid: 1, startTime: '1', bootId: 'b' }, sup: undefined } },
        ],
        false,
      ),
    ).toEqual([]);
  });
});

describe('planOverdue (rules 3-4)', () => {
  it("the lower of the run's own timeout and --timeout wins; 0 turns --timeout off", () => {
    expect(runLimit(run({ timeout_ms: 5 * MIN }), 60 * MIN)).toBe(5 * MIN);
    expect(runLimit(run({ timeout_ms: 90 * MIN }), 60 * MIN)).toBe(60 * MIN);
    expect(runLimit(run({ timeout_ms: 5 * MIN }), 0)).toBe(5 * MIN);
    expect(runLimit(run(), 60 * MIN)).toBe(60 * MIN);
    expect(runLimit(run(), 0)).toBeNull();
  });

  it('ends a run past its limit as a timeout, and does not also look at its progress', () => {
    const r = run({ started_at: NOW - 11 * MIN, timeout_ms: 10 * MIN });
    const out = planOverdue([live(r, { progress: { ticks: 5, log: 0, prev: { ticks: 5, log: 0, since: NOW - 60 * MIN } } })], { timeoutMs: 0, idleMs: MIN }, NOW);
    expect(out.end).toEqual([{ run: r, kind: 'timeout', reason: 'running 11m, past its limit of 10m', timedOut: true }]);
    expect(out.progress).toEqual([]);
  });

  it('hung: no CPU ticks and no log bytes for the idle window; any movement restarts the clock', () => {
    const still = run({ id: 'r0000st' });
    const moved = run({ id: 'r0000mv' });
    const fresh = run({ id: 'r0000fr' });
    const out = planOverdue(
      [
        live(still, { progress: { ticks: 7, log: 100, prev: { ticks: 7, log: 100, since: NOW - 6 * MIN } } }),
        live(moved, { progress: { ticks: 7, log: 101, prev: { ticks: 7, log: 100, since: NOW - 6 * MIN } } }),
        live(fresh, { progress: { ticks: 0, log: 0, prev: undefined } }),
      ],
      { timeoutMs: 0, idleMs: 5 * MIN },
      NOW,
    );
    expect(out.end.map((x) => [x.run.id, x.kind, x.timedOut])).toEqual([['r0000st', 'hung', true]]);
    expect(out.end[0]!.reason).toBe('no CPU progress and no log output for 6m (--idle 5m)');
    expect(out.progress).toEqual([
      { runId: 'r0000st', value: { ticks: 7, log: 100, since: NOW - 6 * MIN } },
      { runId: 'r0000mv', value: { ticks: 7, log: 101, since: NOW } },
      { runId: 'r0000fr', value: { ticks: 0, log: 0, since: NOW } },
    ]);
  });

  it('keeps no progress records with --idle off', () => {
    expect(planOverdue([live(run(), { progress: { ticks: 1, log: 1, prev: undefined } })], limits, NOW)).toEqual({ end: [], progress: [] });
  });
});

describe('planShed (rule 7)', () => {
  const pressure = { level: 3, maxAgents: 2, reasons: ['load 9.1/core'], unmanaged: 1 };

  it('does nothing below level 3', () => {
    expect(planShed([run()], [], { ...pressure, level: 2 })).toEqual([]);
  });

  it('ends the highest priority number first, then the newest, until the agents (unmanaged ones too) fit', () => {
    const a = run({ id: 'r00000a', priority: 0, started_at: NOW - 3 * MIN });
    const b = run({ id: 'r00000b', priority: 5, started_at: NOW - 2 * MIN });
    const c = run({ id: 'r00000c', priority: 0, started_at: NOW - MIN });
    const out = planShed([a, b, c], [], pressure);
    expect(out.map((x) => x.run.id)).toEqual(['r00000b', 'r00000c']);
    expect(out[0]!.reason).toBe('throttle level 3 (heavy: load 9.1/core) allows 2 agents, 4 running: priority 5 goes first');
    expect(out.every((x) => !x.timedOut)).toBe(true);
  });

  it('runs already ended for a timeout or a hang neither count nor go twice', () => {
    const a = run({ id: 'r00000a' });
    const b = run({ id: 'r00000b' });
    const out = planShed([a, b], [{ run: a, kind: 'timeout', reason: 'x', timedOut: true }], { ...pressure, unmanaged: 0, maxAgents: 1 });
    expect(out).toEqual([]);
  });

  it("counts agents outside every live run's group as unmanaged", () => {
    const r = run({ pid: 4000, pgid: 4000 });
    const procs = [proc({ pid: 4000 }), proc({ pid: 4001, pgid: 4000 }), proc({ pid: 5000 })];
    expect(unmanagedAgents([4001, 5000, 6000], procs, [r])).toBe(2); // 6000 is in no table: counted
  });
});

describe('planRunEnds', () => {
  it("another user's run is never ended, but it still counts for --shed", () => {
    const theirs = run({ id: 'r0theirs', started_at: NOW - 20 * MIN, timeout_ms: 10 * MIN });
    const mine = run({ id: 'r00mine1', priority: 1 });
    const out = planRunEnds([live(theirs, { ours: false }), live(mine)], limits, NOW, { level: 3, maxAgents: 0, reasons: ['x'], unmanaged: 0 });
    expect(out.end.map((x) => [x.run.id, x.kind])).toEqual([['r00mine1', 'shed']]);
  });
});

describe('findings of acting', () => {
  const x = { run: run(), kind: 'timeout' as const, reason: 'overdue', timedOut: true };

  it('a run that ended by itself between gather and apply is still reported ended: the end found nothing left', () => {
    expect(runFinding(x, ended({ graceful: true, survivors: [] }))).toMatchObject({ action: 'ended', ended: { survivors: [] } });
  });

  it('a run without an identity to signal, or with survivors, failed', () => {
    expect(runFinding(x, undefined)).toEqual({ kind: 'timeout', pid: 4000, run_id: 'r000001', name: 'w', reason: 'overdue', action: 'failed' });
    expect(runFinding(x, ended({ survivors: [4000] })).action).toBe('failed');
    expect(runFinding(x, 'dry').action).toBe('would_end');
  });

  it('an orphan ended, failed, or would be', () => {
    const o = { pid: 7, startTicks: 1, reason: 'r' };
    expect(orphanFinding(o, 'dry')).toEqual({ kind: 'orphan', pid: 7, run_id: null, name: null, reason: 'r', action: 'would_end' });
    expect(orphanFinding(o, ended({ survivors: [7] })).action).toBe('failed');
    expect(orphanFinding(o, ended()).action).toBe('ended');
  });
});

describe('orphans (rule 5)', () => {
  const mine = (p: ProcDetail) => p.uid === 1000;

  it("candidates: agents whose parent is PID 1, outside live runs' groups, not agentctl, ours", () => {
    const r = run({ pid: 4000, pgid: 4000 });
    const procs = [
      proc({ pid: 10 }), // a candidate
      proc({ pid: 11, ppid: 900 }), // its parent lives
      proc({ pid: 12, pgid: 4000 }), // a live run's
      proc({ pid: 13, argv: ['node', '/usr/bin/agentctl', 'reap'] }),
      proc({ pid: 14, uid: 1001 }), // another user's
      proc({ pid: 15 }), // not an agent
    ];
    expect(orphanCandidates(procs, new Set([10, 11, 12, 13, 14]), [r], mine).map((p) => p.pid)).toEqual([10]);
  });

  it("ends the agent a finished run left behind; leaves a live run's, a service's and a session leader", () => {
    const facts = (pid: number, over: object = {}) => ({ proc: proc({ pid }), facts: { pid, ppid: 1, sid: 3, runId: undefined, cgroup: undefined, ...over } });
    const out = planOrphans(
      [facts(20, { runId: 'r0ended1' }), facts(21, { runId: 'r00live1' }), facts(22, { cgroup: '0::/system.slice/mcp.service' }), facts(23, { sid: 23 }), facts(24)],
      new Map([
        ['r0ended1', true],
        ['r00live1', false],
      ]),
      '0::/user.slice/session-1.scope',
    );
    expect(out.map((x) => x.pid)).toEqual([20, 24]);
    expect(out[0]).toEqual({ pid: 20, startTicks: 500, reason: 'agent claude (PID 20) left behind by run r0ended1, which has ended' });
  });

  it('an unknown run id is judged like any other process', () => {
    const out = planOrphans([{ proc: proc({ pid: 30 }), facts: { pid: 30, ppid: 1, sid: 30, runId: 'r0other1', cgroup: undefined } }], new Map(), undefined);
    expect(out).toEqual([]);
  });
});

describe('planZombies (rule 6)', () => {
  it("reports our zombies with their parent's command line, redacted and cut; never another user's", () => {
    const procs = [proc({ pid: 40, state: 'Z', ppid: 39, comm: 'sh' }), proc({ pid: 39, comm: 'python3' }), proc({ pid: 41, state: 'Z', ppid: 39, uid: 0 })];
    const out = planZombies(procs, (p) => p.uid === 1000, new Map([[39, 'python3\0w.py\0--token=sk-abcdefghijklmnopqrstuvwxyz123456\0']]));
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ kind: 'zombie', pid: 40, action: 'reported' });
    expect(out[0]!.reason).toMatch(/^zombie sh \(PID 40\); its parent PID 39 \(python3 w\.py --token=.*\) has not waited for it$/);
    expect(out[0]!.reason).not.toContain('abcdefghijklmnopqrstuvwxyz123456');
  });

  it("falls back to the parent's name, then to unknown", () => {
    const out = planZombies([proc({ pid: 40, state: 'Z', ppid: 39 }), proc({ pid: 39, comm: 'bash' }), proc({ pid: 42, state: 'Z', ppid: 77 })], () => true, new Map());
    expect(out.map((f) => f.reason)).toEqual(['zombie claude (PID 40); its parent PID 39 (bash) has not waited for it', 'zombie claude (PID 42); its parent PID 77 (unknown) has not waited for it']);
  });
});

describe('what reap records', () => {
  it('one event per finding but zombies, with how each end went', () => {
    const findings: Finding[] = [
      { kind: 'timeout', pid: 4000, run_id: 'r000001', name: 'w', reason: 'overdue', action: 'ended', ended: ended({ swept: [4005] }) },
      { kind: 'orphan', pid: 50, run_id: null, name: null, reason: 'left', action: 'failed' },
      { kind: 'zombie', pid: 40, run_id: null, name: null, reason: 'z', action: 'reported' },
    ];
    expect(reapEvents(findings)).toEqual([
      { command: 'reap', kind: 'reap.timeout', subject: 'w', reason: 'ended: overdue', data: { run_id: 'r000001', pid: 4000, graceful: true, forced: false, swept: [4005] } },
      { command: 'reap', kind: 'reap.orphan', subject: 'pid 50', reason: 'failed: left', data: { run_id: null, pid: 50 } },
    ]);
  });

  it('drops progress records of runs no longer live', () => {
    expect(staleProgressKeys(['progress:r1', 'progress:r2'], new Set(['r2']))).toEqual(['progress:r1']);
  });

  it('removes only the run files of runs the db says ended, never unknown ones', () => {
    const files = ['r1.exit', 'r1.timeout', 'r2.exit', 'r3.child', 'r3.exit.tmp', 'notes.txt'];
    expect(
      leftoverRunFiles(
        files,
        new Map([
          ['r1', true],
          ['r2', false],
          ['r3', true],
        ]),
      ),
    ).toEqual(['r1.exit', 'r1.timeout', 'r3.child', 'r3.exit.tmp']);
  });
});
