/**
 * endTree and signalProcess against a fake process table: which signals go where, and when
 * none may go at all. The same routine runs on real processes in test/integration/safety.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { bootId, type ProcessIdentity } from '../../src/core/identity.js';
import { endTree, type ProcessOs, signalProcess } from '../../src/core/kill.js';
import { orphanVerdict, serviceUnit } from '../../src/core/orphans.js';

interface FakeProc {
  pid: number;
  ppid: number;
  pgid: number;
  start: number;
  /** what it does on a signal: die, or ignore it (TERM only; KILL always kills unless `unkillable`) */
  onTerm: 'die' | 'ignore';
  unkillable?: boolean;
  runId?: string;
}

/** A process table that obeys signals the way the kernel would, and records every kill(2). `after` runs after each kill. */
function fakeOs(procs: FakeProc[], after?: (live: Map<number, FakeProc>, target: number, sig: string) => void): ProcessOs & { sent: Array<[number, string]> } {
  const live = new Map(procs.map((p) => [p.pid, p]));
  const deliver = (p: FakeProc, sig: string) => {
    if (sig === 'SIGKILL' ? !p.unkillable : p.onTerm === 'die') live.delete(p.pid);
  };
  const sent: Array<[number, string]> = [];
  return {
    sent,
    identity: (pid) => {
      const p = live.get(pid);
      return p ? { pid, startTime: String(p.start), bootId: bootId() } : undefined;
    },
    table: () => [...live.values()].map((p) => ({ pid: p.pid, ppid: p.ppid, pgid: p.pgid, state: 'S', startTicks: p.start })),
    carriers: (runId) => [...live.values()].filter((p) => p.runId === runId).map((p) => p.pid),
    kill: (target, sig) => {
      sent.push([target, sig]);
      if (target < 0) {
        const members = [...live.values()].filter((p) => p.pgid === -target);
        if (!members.length) throw Object.assign(new Error('ESRCH'), { code: 'ESRCH' });
        for (const p of members) deliver(p, sig);
        after?.(live, target, sig);
        return;
      }
      const p = live.get(target);
      if (!p) throw Object.assign(new Error('ESRCH'), { code: 'ESRCH' });
      if (p.unkillable) throw Object.assign(new Error('EPERM'), { code: 'EPERM' });
      deliver(p, sig);
      after?.(live, target, sig);
    },
  };
}

const id = (pid: number, start: number): ProcessIdentity => ({ pid, startTime: String(start), bootId: bootId() });
const opts = (os: ProcessOs) => ({ graceMs: 60, pollMs: 5, self: 999_999, os });

describe('signalProcess', () => {
  it('sends nothing when the PID now names another process', () => {
    const os = fakeOs([{ pid: 500, ppid: 1, pgid: 500, start: 77, onTerm: 'die' }]);
    expect(signalProcess(id(500, 76), 'SIGKILL', { group: true, os, guard: new Set() })).toBe(false);
    expect(os.sent).toEqual([]);
  });

  it('never signals a protected PID, even the very process named', () => {
    const os = fakeOs([{ pid: 500, ppid: 1, pgid: 500, start: 77, onTerm: 'die' }]);
    expect(signalProcess(id(500, 77), 'SIGTERM', { os, guard: new Set([500]) })).toBe(false);
    expect(os.sent).toEqual([]);
  });
});

describe('endTree', () => {
  it('a run row whose start time no longer matches: no signal to the PID or its group, TERM or KILL', async () => {
    // an unrelated setsid process reused the PID: it leads a group of its own with a member
    const os = fakeOs([
      { pid: 500, ppid: 1, pgid: 500, start: 900, onTerm: 'ignore' },
      { pid: 501, ppid: 500, pgid: 500, start: 901, onTerm: 'ignore' },
    ]);
    const r = await endTree(id(500, 10), { ...opts(os), runId: 'r000000abc' });
    expect(os.sent).toEqual([]);
    expect(r).toMatchObject({ graceful: true, forced: false, survivors: [] });
  });

  it('TERMs the group through its leader, and KILLs a member left behind one by one once the leader is gone', async () => {
    const os = fakeOs([
      { pid: 600, ppid: 1, pgid: 600, start: 1, onTerm: 'die' },
      { pid: 601, ppid: 600, pgid: 600, start: 2, onTerm: 'ignore' },
    ]);
    const r = await endTree(id(600, 1), opts(os));
    expect(os.sent).toEqual([
      [-600, 'SIGTERM'],
      [601, 'SIGKILL'],
    ]);
    expect(r).toMatchObject({ graceful: false, forced: true, survivors: [] });
  });

  it('ends a descendant that left the group (setsid, env -i) while its parent lived, and reports it', async () => {
    const os = fakeOs([
      { pid: 700, ppid: 1, pgid: 700, start: 1, onTerm: 'die' },
      { pid: 710, ppid: 700, pgid: 710, start: 5, onTerm: 'ignore' },
    ]);
    const r = await endTree(id(700, 1), opts(os));
    expect(os.sent).toContainEqual([710, 'SIGTERM']);
    expect(os.sent).toContainEqual([710, 'SIGKILL']);
    expect(os.sent.some(([p]) => p === -710)).toBe(false);
    expect(r).toMatchObject({ swept: [710], survivors: [] });
  });

  it('a leader that exits during the grace and whose PID is reused: the new process and its children get nothing', async () => {
    // the escaped descendant ignores TERM, so the grace runs out; meanwhile PID 5000 is reused
    const os = fakeOs(
      [
        { pid: 5000, ppid: 1, pgid: 5000, start: 1, onTerm: 'die' },
        { pid: 5010, ppid: 5000, pgid: 5010, start: 2, onTerm: 'ignore' },
      ],
      (live, target, sig) => {
        if (target === -5000 && sig === 'SIGTERM') {
          live.set(5000, { pid: 5000, ppid: 1, pgid: 5000, start: 900, onTerm: 'ignore' });
          live.set(6000, { pid: 6000, ppid: 5000, pgid: 5000, start: 901, onTerm: 'ignore' });
        }
      },
    );
    const r = await endTree(id(5000, 1), opts(os));
    expect(os.sent).toEqual([
      [-5000, 'SIGTERM'],
      [5010, 'SIGTERM'],
      [5010, 'SIGKILL'],
    ]);
    expect(r.survivors).toEqual([]);
  });

  it('a group that holds agentctl itself is signalled member by member, never as a group', async () => {
    const os = fakeOs([
      { pid: 7000, ppid: 1, pgid: 7000, start: 1, onTerm: 'die' },
      { pid: 7001, ppid: 7000, pgid: 7000, start: 2, onTerm: 'die' },
      { pid: 7002, ppid: 1, pgid: 7000, start: 3, onTerm: 'die' }, // this agentctl, re-parented
    ]);
    await endTree(id(7000, 1), { ...opts(os), self: 7002 });
    expect(os.sent.some(([p]) => p < 0)).toBe(false);
    expect(os.sent).toContainEqual([7000, 'SIGTERM']);
    expect(os.sent).toContainEqual([7001, 'SIGTERM']);
    expect(os.sent.some(([p]) => p === 7002)).toBe(false);
  });

  it('lists what it could not end as survivors', async () => {
    const os = fakeOs([
      { pid: 800, ppid: 1, pgid: 800, start: 1, onTerm: 'die' },
      { pid: 810, ppid: 800, pgid: 810, start: 5, onTerm: 'ignore', unkillable: true },
    ]);
    const r = await endTree(id(800, 1), opts(os));
    expect(r.survivors).toEqual([810]);
  });

  it('sweeps processes carrying the run id whose parents are gone', async () => {
    const os = fakeOs([
      { pid: 900, ppid: 1, pgid: 900, start: 1, onTerm: 'die' },
      { pid: 950, ppid: 1, pgid: 950, start: 3, onTerm: 'ignore', runId: 'r0000000xyz' },
      { pid: 960, ppid: 1, pgid: 960, start: 3, onTerm: 'ignore' },
    ]);
    const r = await endTree(id(900, 1), { ...opts(os), runId: 'r0000000xyz' });
    expect(r.survivors).toEqual([]);
    expect(os.sent.some(([p]) => p === 960 || p === -960)).toBe(false);
  });
});

describe('orphanVerdict', () => {
  const runs: Record<string, 'live' | 'ended'> = { r00000live1: 'live', r00000gone1: 'ended' };
  const ctx = { runState: (id: string) => runs[id] ?? ('unknown' as const), ownCgroup: '0::/user.slice/session-2.scope\n' };
  const base = { pid: 4000, ppid: 1, sid: 3000, runId: undefined, cgroup: '0::/user.slice/session-2.scope\n' };

  it('an agent whose starter died in a session is an orphan', () => {
    expect(orphanVerdict(base, ctx).orphan).toBe(true);
  });
  it('a daemon leading its own session is not', () => {
    expect(orphanVerdict({ ...base, sid: 4000 }, ctx)).toMatchObject({ orphan: false, why: expect.stringMatching(/own session/) });
  });
  it('a process in a service unit of its own is not', () => {
    expect(orphanVerdict({ ...base, cgroup: '0::/system.slice/mcp-server-git.service\n' }, ctx)).toMatchObject({ orphan: false, why: 'runs in service unit mcp-server-git.service' });
  });
  it('one carrying an ended run id is, even leading its own session; a live run id keeps it with its run', () => {
    expect(orphanVerdict({ ...base, sid: 4000, runId: 'r00000gone1' }, ctx).orphan).toBe(true);
    expect(orphanVerdict({ ...base, runId: 'r00000live1' }, ctx).orphan).toBe(false);
  });
  it("a run id this state does not know (another state folder's) proves nothing: rule 2 decides", () => {
    expect(orphanVerdict({ ...base, sid: 4000, runId: 'r00000else1' }, ctx)).toMatchObject({ orphan: false, why: expect.stringMatching(/own session/) });
    expect(orphanVerdict({ ...base, runId: 'r00000else1' }, ctx).orphan).toBe(true);
  });
  it('a parent that lives means no orphan', () => {
    expect(orphanVerdict({ ...base, ppid: 1234 }, ctx).orphan).toBe(false);
  });
  it('reads the unit from cgroup v1 and v2 files', () => {
    expect(serviceUnit('12:pids:/system.slice/x.service\n1:name=systemd:/system.slice/ssh.service\n0::/system.slice/ssh.service\n')).toBe('ssh.service');
    expect(serviceUnit('0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-foo.scope\n')).toBeUndefined();
    expect(serviceUnit('0::/\n')).toBeUndefined();
  });
});
