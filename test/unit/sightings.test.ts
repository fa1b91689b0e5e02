import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/config/load.js';
import { listProcesses, type ProcDetail, type ProcInfo } from '../../src/core/proc.js';
import {
  goneAmong,
  identKey,
  matchProcesses,
  MAX_PER_READING,
  planSightings,
  recordSightings,
  restartLoops,
  type Seen,
  type SightingRow,
  sightingRules,
  storedCommand,
} from '../../src/core/sightings.js';
import { State } from '../../src/core/state.js';
import { Procs, tempDir } from '../helpers.js';

const proc = (pid: number, argv: string[]): ProcInfo => ({ pid, argv, cmdline: argv.join(' ') });
const config = {
  agents: { patterns: ['(^|/)claude(\\s|$)'], claude: 'claude' },
  services: [
    { name: 'orchestrator', match: 'orchestrator\\.py', expect_status: 200, timeoutMs: 2000 },
    { name: 'site', port: 7085, expect_status: 200, timeoutMs: 2000 },
  ],
};

describe('what a reading records', () => {
  it('matches agent patterns and service regexes, never itself or a supervisor', () => {
    const procs = [
      proc(10, ['claude', '--print', 'x']),
      proc(11, ['python3', 'orchestrator.py', '--port', '8080']),
      proc(12, ['vim', 'notes.txt']),
      proc(13, ['agentctl-supervise', '-s', 'r0mwuv7mm4fo101']),
      proc(14, []),
      proc(99, ['claude']),
    ];
    const m = matchProcesses(procs, sightingRules(config), 99);
    expect(m.map((x) => [x.proc.pid, x.matched])).toEqual([
      [10, 'agents'],
      [11, 'services.orchestrator'],
    ]);
    expect(matchProcesses(procs, [], 99)).toEqual([]);
  });

  it('one identity per command line, whatever the PID; secrets never reach the key or the stored command', () => {
    const a = identKey(['python3', 'w.py', '--token', 'hunter2']);
    expect(identKey(['python3', 'w.py', '--token', 'other-secret'])).toBe(a);
    expect(identKey(['python3', 'w.py', '--queue', 'b'])).not.toBe(identKey(['python3', 'w.py', '--queue', 'a']));
    expect(storedCommand(['python3', 'w.py', '--token', 'hunter2'])).toBe('["python3","w.py","--token","<redacted>"]');
    const long = JSON.parse(storedCommand(['claude', '-p', 'x'.repeat(10_000)])) as string[];
    expect(long.join(' ').length).toBeLessThan(2100);
    expect(long[2]!.endsWith('…')).toBe(true);
  });

  it('takes start times from the list when it has them, else from stat; a process gone meanwhile is skipped', () => {
    const detail: ProcDetail = { ...proc(20, ['claude']), ppid: 1, pgid: 20, state: 'S', uid: 0, startTicks: 500, cpuTicks: 0, comm: 'claude' };
    const seen = planSightings(
      [
        { proc: detail, matched: 'agents' },
        { proc: proc(21, ['claude', '-c']), matched: 'agents' },
        { proc: proc(22, ['claude', '-r']), matched: 'agents' },
      ],
      (pid) => (pid === 21 ? { startTicks: '700', ppid: 5 } : undefined),
      1_000_000,
    );
    expect(seen.map((s) => [s.pid, s.startTime, s.startedAt, s.ppid])).toEqual([
      [20, '500', 1_005_000, 1],
      [21, '700', 1_007_000, 5],
    ]);
  });

  it('records at most MAX_PER_READING processes a reading', () => {
    const many = Array.from({ length: MAX_PER_READING + 50 }, (_, i) => ({ proc: proc(1000 + i, ['claude']), matched: 'agents' }));
    expect(planSightings(many, () => ({ startTicks: '1', ppid: 1 }), 0)).toHaveLength(MAX_PER_READING);
  });
});

describe('which sightings a reading finds gone', () => {
  const seen = (pid: number, startTime: string): Seen => ({ ident: 'i', pid, ppid: 1, startTime, startedAt: 0, matched: 'agents', command: '[]' });
  const t = (pid: number, start_time: string, boot_id = 'b') => ({ pid, start_time, boot_id });

  it('absent, reused, zombie, another boot, or listed with a command line it no longer has: gone; still seen: not', () => {
    const procs: ProcInfo[] = [
      proc(1, ['claude']),
      { ...proc(2, []), ppid: 1, pgid: 2, state: 'Z', uid: 0, startTicks: 5, cpuTicks: 0, comm: 'claude' } as ProcDetail,
      { ...proc(3, ['vim']), ppid: 1, pgid: 3, state: 'S', uid: 0, startTicks: 9, cpuTicks: 0, comm: 'vim' } as ProcDetail,
      proc(4, ['vim']),
    ];
    const tracked = [t(1, '100'), t(2, '5'), t(3, '8'), t(4, '40'), t(5, '50'), t(1, '100', 'old-boot')];
    expect(goneAmong(tracked, procs, [seen(1, '100')], 'b')).toEqual([t(2, '5'), t(3, '8'), t(4, '40'), t(5, '50'), t(1, '100', 'old-boot')]);
  });

  it('a PID listed without its command line (a list read without argv) is left alone', () => {
    const procs: ProcInfo[] = [{ ...proc(7, []), ppid: 1, pgid: 7, state: 'S', uid: 0, startTicks: 70, cpuTicks: 0, comm: 'claude' } as ProcDetail];
    expect(goneAmong([t(7, '70')], procs, [], 'b')).toEqual([]);
    expect(goneAmong([t(7, '71')], procs, [], 'b')).toEqual([t(7, '71')]); // reused
  });

  it('when the reading was cut at its cap, a listed process it did not record is not called gone', () => {
    expect(goneAmong([t(4, '40')], [proc(4, ['claude'])], [], 'b', false)).toEqual([]);
    expect(goneAmong([t(5, '40')], [proc(4, ['claude'])], [], 'b', false)).toEqual([t(5, '40')]);
  });
});

describe('restart loops', () => {
  const now = 10_000_000;
  let pid = 100;
  const row = (ident: string, startedAt: number, lastSeen: number, goneAt: number | null): SightingRow => ({
    ident,
    pid: pid++,
    ppid: 42,
    start_time: String(startedAt / 10),
    started_at: startedAt,
    matched: 'services.flaky',
    command: JSON.stringify(['python3', `${ident}.py`]),
    first_seen: startedAt + 100,
    last_seen: lastSeen,
    gone_at: goneAt,
  });
  const opts = { now, windowMs: 600_000, lifetimeMs: 60_000, minCount: 5 };
  const loop = (ident: string, n: number, from: number, life: number, step = 1000) =>
    Array.from({ length: n }, (_, i) => row(ident, from + i * step, from + i * step + life, from + i * step + life + 500));

  it('five short-lived, gone processes of one command line in the window are a loop; four are not', () => {
    const found = restartLoops([...loop('flaky', 5, now - 60_000, 300), ...loop('calm', 4, now - 60_000, 300)], opts);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ ident: 'flaky', count: 5, matched: 'services.flaky', argv: ['python3', 'flaky.py'], longestSeenMs: 300, alive: 0, parent: { pid: 42 } });
    expect(found[0]!.pids).toHaveLength(5);
    expect(found[0]!.lastStart - found[0]!.firstStart).toBe(4000);
  });

  it('long-lived ones, live ones and ones that started before the window do not count', () => {
    const rows = [
      ...loop('long', 8, now - 500_000, 61_000, 62_000), // each seen alive past the lifetime
      ...loop('old', 8, now - 900_000, 300), // started before the window
      ...Array.from({ length: 8 }, (_, i) => row('live', now - 10_000 + i, now, null)), // still running
    ];
    expect(restartLoops(rows, opts)).toEqual([]);
    // with a longer window, the old loop shows up
    expect(restartLoops(rows, { ...opts, windowMs: 1_000_000 }).map((l) => l.ident)).toEqual(['old']);
  });

  it('a stored command that is not an argv is shown as one word', () => {
    const rows = loop('odd', 5, now - 60_000, 300).map((r) => ({ ...r, command: 'not json' }));
    expect(restartLoops(rows, opts)[0]!.argv).toEqual(['not json']);
  });
});

describe('sightings in the state db', () => {
  it('a reading records a real matching process once, moves last_seen on, and the next reading after it ends closes it', async () => {
    const t = tempDir();
    const s = State.open(t.dir);
    const procs = new Procs();
    try {
      const marker = `sightings_probe_${process.pid}`;
      const child = await procs.node(`setInterval(() => {}, 60_000) // ${marker}`);
      const cfg = { agents: { patterns: [marker], claude: 'x' }, services: [] };
      const rows = () => s.db.prepare('SELECT pid, ppid, started_at, first_seen, last_seen, gone_at, matched FROM sightings').all() as Array<Record<string, number | string | null>>;
      recordSightings(s, await listProcesses(), cfg, 1_000);
      recordSightings(s, await listProcesses(), cfg, 2_000);
      expect(rows()).toEqual([{ pid: child.pid, ppid: process.pid, started_at: expect.any(Number), first_seen: 1_000, last_seen: 2_000, gone_at: null, matched: 'agents' }]);
      expect(1_000 - (rows()[0]!.started_at as number)).toBeGreaterThanOrEqual(-20); // started just before the reading (10 ms ticks)
      expect(1_000 - (rows()[0]!.started_at as number)).toBeLessThan(10_000);
      // an older reading than the last one does not judge it, and does not move last_seen back
      await procs.end(child);
      recordSightings(s, await listProcesses(), cfg, 1_500);
      expect(rows()[0]).toMatchObject({ last_seen: 2_000, gone_at: null });
      recordSightings(s, await listProcesses(), cfg, 3_000);
      expect(rows()[0]).toMatchObject({ last_seen: 2_000, gone_at: 3_000 });
      // nothing matched, nothing tracked: no write at all
      const changes = s.db.prepare('SELECT total_changes() AS n').get() as { n: number };
      recordSightings(s, await listProcesses(), cfg, 4_000);
      expect(s.db.prepare('SELECT total_changes() AS n').get()).toEqual(changes);
    } finally {
      await procs.endAll();
      s.close();
      t.cleanup();
    }
  });

  it('are pruned with the samples limits, by when each was last seen', () => {
    const t = tempDir();
    const s = State.open(t.dir);
    try {
      const ins = s.db.prepare(
        "INSERT INTO sightings (ident, pid, ppid, start_time, boot_id, started_at, matched, command, first_seen, last_seen) VALUES ('i', ?, 1, ?, 'b', 0, 'agents', '[]', ?, ?)",
      );
      const now = 100_000_000;
      for (let i = 0; i < 30; i++) ins.run(i, String(i), now - 7_200_000 + i, now - 7_200_000 + i); // 2 h old
      for (let i = 30; i < 60; i++) ins.run(i, String(i), now - i, now - i);
      const r = s.prune({ eventsMaxAgeMs: 86_400_000, eventsMaxRows: 1000, samplesMaxAgeMs: 3_600_000, samplesMaxRows: 20 }, now, true)!;
      expect(r.sightings).toBe(40);
      const left = s.db.prepare('SELECT MIN(pid) AS lo, MAX(pid) AS hi, COUNT(*) AS n FROM sightings').get();
      expect(left).toEqual({ lo: 30, hi: 49, n: 20 }); // the 20 seen last
    } finally {
      s.close();
      t.cleanup();
    }
  });

  it('the defaults compile every agent pattern', () => {
    expect(sightingRules(loadConfig({ defaultsOnly: true }).config).length).toBe(loadConfig({ defaultsOnly: true }).config.agents.patterns.length);
  });
});
