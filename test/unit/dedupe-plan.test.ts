import { describe, expect, it } from 'vitest';
import { dedupeEvents, type DedupeGroup, inScope, planInstanceDuplicates, planRunDuplicates, processInScope, runsInScope, type Scope } from '../../src/core/dedupe/plan.js';
import type { ProcDetail } from '../../src/core/proc.js';
import type { RunRow } from '../../src/core/runs/registry.js';
import { type Instance, workerId } from '../../src/core/workers.js';
import { runRow } from '../rows.js';

const NOW = 1_800_000_000_000;
const none: Scope = { ignore: [], match: undefined };

const run = (id: string, over: Partial<RunRow> = {}): RunRow => runRow({ id, command: '["python3","w.py"]', started_at: NOW, ...over });

function proc(pid: number, argv: string[], over: Partial<ProcDetail> = {}): ProcDetail {
  return { pid, argv, cmdline: argv.join(' '), ppid: 1, pgid: pid, state: 'S', uid: 1000, startTicks: 100, cpuTicks: 0, comm: 'python3', ...over };
}

function inst(pid: number, program: string, start: number, folder = '/srv'): Instance {
  return { pid, id: workerId(['python3', `${folder}/${program}`])!, start, pids: [pid] };
}

describe('registered runs', () => {
  it('a name running twice keeps the newest and ends the rest; a name running once is no duplicate', () => {
    const old = run('r0000old', { started_at: NOW - 2000 });
    const mid = run('r0000mid', { started_at: NOW - 1000 });
    const young = run('r00young', { started_at: NOW });
    const alone = run('r00alone', { name: 'other' });
    const out = planRunDuplicates([old, young, alone, mid]);
    expect(out).toEqual([{ name: 'w', kept: young, ended: [mid, old] }]);
  });

  it("another user's run, a run without a process, and ignored or unmatched command lines are out of scope", () => {
    const theirs = run('r0theirs');
    const noPid = run('r00nopid', { pid: null });
    const ignored = run('r0ignore', { command: '["python3","keep_me.py"]' });
    const mine = run('r00mine1');
    const scope: Scope = { ignore: [/keep_me/], match: undefined };
    expect(
      runsInScope(
        [
          { run: theirs, ours: false },
          { run: noPid, ours: true },
          { run: ignored, ours: true },
          { run: mine, ours: true },
        ],
        scope,
      ),
    ).toEqual([mine]);
    expect(runsInScope([{ run: mine, ours: true }], { ignore: [], match: /other/ })).toEqual([]);
  });

  it('scope: ignore wins over match', () => {
    expect(inScope('python3 w.py', { ignore: [/w\.py/], match: /w/ })).toBe(false);
    expect(inScope('python3 w.py', { ignore: [], match: /w/ })).toBe(true);
    expect(inScope('python3 w.py', none)).toBe(true);
  });
});

describe('processInScope', () => {
  const mine = (p: ProcDetail) => p.uid === 1000;
  const base = { mine, runPgids: new Set<number | null>([4000]), scope: none, isAgentctl: false };

  it('a script of ours outside registered runs is in scope', () => {
    const p = proc(10, ['python3', 'w.py']);
    expect(processInScope(p, workerId(p.argv)!, base)).toBe(true);
  });

  it("another user's process, a registered run's group, agentctl itself, an ignored command line: never", () => {
    const p = proc(10, ['python3', 'w.py']);
    const id = workerId(p.argv)!;
    expect(processInScope({ ...p, uid: 1001 }, id, base)).toBe(false);
    expect(processInScope({ ...p, pgid: 4000 }, id, base)).toBe(false);
    expect(processInScope(p, id, { ...base, isAgentctl: true })).toBe(false);
    expect(processInScope(p, id, { ...base, scope: { ignore: [/w\.py/], match: undefined } })).toBe(false);
  });

  it('without --match only scripts; with it, what it matches', () => {
    const p = proc(11, ['claude', '--print']);
    expect(processInScope(p, workerId(p.argv)!, base)).toBe(false);
    expect(processInScope(p, workerId(p.argv)!, { ...base, scope: { ignore: [], match: /^claude/ } })).toBe(true);
  });
});

describe('planInstanceDuplicates', () => {
  it('keeps the highest version, then the newest; the folder is said unless across folders', () => {
    const v1 = inst(20, 'w.py', 300);
    const v2 = inst(21, 'w_v2.py', 100);
    const v2b = inst(22, 'w_v2.py', 200);
    const out = planInstanceDuplicates(new Map([['/srv: w.py', [v1, v2, v2b]]]), 'highest-version', false);
    expect(out).toEqual([{ identity: '/srv: w.py', folder: '/srv', keep: v2b, duplicates: [v1, v2] }]);
    expect(planInstanceDuplicates(new Map([['w.py', [v1, v2]]]), 'oldest', true)).toEqual([{ identity: 'w.py', folder: null, keep: v2, duplicates: [v1] }]);
  });

  it('a reused PID is still one instance by its start time: the keeper is chosen by start, never by PID order alone', () => {
    // PID 30 was reused: the process now under it started last
    const reused = inst(30, 'w.py', 900);
    const other = inst(31, 'w.py', 100);
    expect(planInstanceDuplicates(new Map([['/srv: w.py', [reused, other]]]), 'newest', false)[0]!.keep.pid).toBe(30);
    expect(planInstanceDuplicates(new Map([['/srv: w.py', [reused, other]]]), 'oldest', false)[0]!.keep.pid).toBe(31);
  });

  it('an identity running once has no duplicates', () => {
    expect(planInstanceDuplicates(new Map([['/srv: w.py', [inst(20, 'w.py', 1)]]]), 'newest', false)).toEqual([]);
  });
});

describe('dedupeEvents', () => {
  it('one event per identity and one per run name, failures marked', () => {
    const g: DedupeGroup = {
      identity: '/srv: w.py',
      folder: '/srv',
      keep: { pid: 21, command: 'python3 w_v2.py', version: 2 },
      duplicates: [
        { pid: 20, command: 'python3 w.py', version: 1, pids: [20], action: 'ended' },
        { pid: 22, command: 'python3 w.py', version: 1, pids: [22], action: 'failed' },
      ],
    };
    expect(dedupeEvents([g], [{ name: 'w', kept: 'r2', ended: ['r1'] }], 'highest-version')).toEqual([
      {
        command: 'dedupe-workers',
        kind: 'dedupe.ended',
        subject: '/srv: w.py',
        reason: 'kept PID 21 (python3 w_v2.py, --keep highest-version); ended PID 20, PID 22 (FAILED)',
        data: { kept: 21, ended: [20, 22] },
      },
      { command: 'dedupe-workers', kind: 'dedupe.ended', subject: 'w', reason: 'registered run w ran 2 times: kept r2, ended r1' },
    ]);
  });
});
