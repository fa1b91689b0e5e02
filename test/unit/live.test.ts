import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/config/load.js';
import { bootId, getIdentity } from '../../src/core/identity.js';
import { buildFrame, cutTo, layout, type Painter } from '../../src/core/live/frame.js';
import { LiveGatherer, type LiveRun, type LiveSnapshot, parsePorts } from '../../src/core/live/gather.js';
import { parseInterval } from '../../src/core/live/interval.js';
import { cpuPercent, type LiveProc, parseStat, treeOf, treeUsage } from '../../src/core/live/procs.js';
import { drawText, ENTER, isQuitKey, LEAVE, Screen, type TermIn, type TermOut } from '../../src/core/live/screen.js';
import { UsageError } from '../../src/core/errors.js';
import { State } from '../../src/core/state.js';
import { FakeHost } from '../fake-host.js';
import { tempDir, thrown } from '../helpers.js';

const run = (over: Partial<LiveRun> = {}): LiveRun => ({
  run_id: 'r0mwv9gd31h6d01',
  name: 'worker',
  group: 'default',
  state: 'running',
  pid: 22269,
  cpu_pct: 12.5,
  rss_bytes: 1_700_000,
  processes: 1,
  uptime_ms: 65_000,
  restarts: 2,
  ports: [3000, 3001],
  ...over,
});

const snap = (runs: LiveRun[], over: Partial<LiveSnapshot> = {}): LiveSnapshot => ({
  timestamp: '2026-11-24T22:23:07.000Z',
  interval_ms: 1000,
  throttle: {
    level: 2,
    name: 'medium',
    raw_level: 2,
    reasons: ['memory 91% >= 90%', 'swap-in 200 pages/s >= 100 pages/s'],
    disabled: false,
    memory_used_pct: 91,
    cpu_used_pct: 40,
    load_per_core: 0.8,
  },
  host: { managed: runs.length, unmanaged: 1, agents: runs.length + 1, level: 2, max_agents: 3 },
  queue: { waiting: 4 },
  breakers: { open: ['flaky'], half_open: ['healing'], host_open: false },
  runs,
  ...over,
});

const many = (n: number) => Array.from({ length: n }, (_, i) => run({ run_id: `r0mwv9gd31h6d${String(i).padStart(2, '0')}`, name: `worker-${i}` }));
const cols = (s: string) => [...s].length;

describe('buildFrame: width', () => {
  it.each([20, 30, 40, 50, 60, 72, 80, 100, 132])('every line fits %i columns', (width) => {
    const lines = buildFrame(snap([...many(3), run({ name: 'a-very-long-name-that-goes-on-and-on-and-on', ports: [3000, 3001, 3002, 3003, 3004] })]), { width, height: Infinity, interactive: true });
    for (const l of lines) expect(cols(l), JSON.stringify(l)).toBeLessThanOrEqual(width);
  });

  it('shows every column when they fit, and the header facts', () => {
    const lines = buildFrame(snap([run()]), { width: 132, height: Infinity, interactive: true });
    expect(lines[0]).toBe('agentctl top  22:23:07  every 1s  q quits');
    expect(lines[1]).toContain('level 2 medium');
    expect(lines[2]).toBe('why       memory 91% >= 90%; swap-in 200 pages/s >= 100 pages/s');
    expect(lines[3]).toBe('agents    2 of 3 (1 started by agentctl, 1 other)  queue 4  breakers flaky, healing (half-open)');
    expect(lines[5]!.split(/\s+/)).toEqual(['RUN', 'NAME', 'STATE', 'PID', 'CPU%', 'RSS', 'UPTIME', '↺', 'PORTS']);
    expect(lines[6]!.split(/\s+/)).toEqual(['r0mwv9gd31h6d01', 'worker', 'running', '22269', '12.5', '1.6M', '1m', '5s', '2', '3000,3001']);
  });

  it('cuts NAME with … and then drops whole columns in order, never NAME, STATE, PID or CPU%', () => {
    const long = [run({ name: 'n'.repeat(40) })];
    expect(layout(long, 200).map((c) => c.col.head)).toEqual(['RUN', 'NAME', 'STATE', 'PID', 'CPU%', 'RSS', 'UPTIME', '↺', 'PORTS']);
    const at80 = layout(long, 80);
    expect(at80.find((c) => c.col.head === 'NAME')!.width).toBeLessThan(40);
    const narrow = layout(long, 40).map((c) => c.col.head);
    expect(narrow).not.toContain('RUN');
    expect(narrow).toEqual(expect.arrayContaining(['NAME', 'STATE', 'PID', 'CPU%']));
    const tiny = layout(long, 10).map((c) => c.col.head);
    expect(tiny).toEqual(['NAME', 'STATE', 'PID', 'CPU%']);
    const row = buildFrame(snap(long), { width: 60, height: Infinity, interactive: false })[6]!;
    expect(row).toMatch(/n+…/);
  });

  it('Infinity (--wide piped) cuts nothing', () => {
    const reasons = ['x'.repeat(300)];
    const lines = buildFrame(snap([run()], { throttle: { ...snap([]).throttle, reasons } }), { width: Infinity, height: Infinity, interactive: false });
    expect(lines[2]).toBe(`why       ${reasons[0]}`);
    expect(lines[0]).not.toContain('q quits');
  });

  it('colour is painted after fitting: escape codes never count against the width', () => {
    const paint: Painter = (s, t) => `\u001b[1m<${s}>${t}\u001b[0m`;
    const lines = buildFrame(snap(many(2)), { width: 50, height: Infinity, interactive: true, paint });
    // eslint-disable-next-line no-control-regex
    const plain = (l: string) => l.replace(/\u001b\[[0-9;]*m<\w+>|\u001b\[0m/g, '');
    for (const l of lines) expect(cols(plain(l))).toBeLessThanOrEqual(50);
    expect(lines[1]).toContain('<magenta>level 2 medium');
    expect(lines[3]).toContain('<yellow>3 of 3'); // at the cap
    expect(buildFrame(snap(many(2)), { width: 200, height: Infinity, interactive: true, paint })[3]).toContain('<red>flaky, healing (half-open)');
  });

  it('escapes control characters in names and reasons', () => {
    const lines = buildFrame(snap([run({ name: 'evil\u001b[2Jname' })], { throttle: { ...snap([]).throttle, reasons: ['a\nb'] } }), { width: 200, height: Infinity, interactive: false });
    expect(lines.join('\n')).not.toContain('\u001b');
    expect(lines[6]).toContain('evil\\x1b[2Jname');
    expect(lines[2]).toContain('a\\nb');
  });

  it('cutTo', () => {
    expect(cutTo('abcdef', 6)).toBe('abcdef');
    expect(cutTo('abcdef', 4)).toBe('abc…');
    expect(cutTo('abcdef', 0)).toBe('');
  });
});

describe('buildFrame: height', () => {
  it('rows that do not fit give way to "… N more", and the frame is exactly the height', () => {
    const lines = buildFrame(snap(many(40)), { width: 80, height: 24, interactive: true });
    expect(lines).toHaveLength(24);
    // 4 header lines, a blank, the table head: 18 lines left, 17 rows and the note
    expect(lines[23]).toBe('… 23 more');
    expect(lines[22]).toContain('worker-16');
  });

  it('all rows when they fit; no note', () => {
    const lines = buildFrame(snap(many(18)), { width: 80, height: 24, interactive: true });
    expect(lines).toHaveLength(24);
    expect(lines.some((l) => l.includes('more'))).toBe(false);
  });

  it('a terminal too short for the header still gets no more lines than it has', () => {
    expect(buildFrame(snap(many(5)), { width: 80, height: 3, interactive: true })).toHaveLength(3);
    expect(buildFrame(snap(many(5)), { width: 80, height: 7, interactive: true })).toHaveLength(7);
  });

  it('no runs', () => {
    expect(buildFrame(snap([]), { width: 80, height: 24, interactive: true }).at(-1)).toBe('no live runs');
  });
});

describe('CPU % and the process tree', () => {
  const p = (pid: number, ppid: number, cpuTicks: number, rssPages = 10): LiveProc => ({ pid, ppid, state: 'S', startTicks: '1', cpuTicks, rssPages, argv: ['x'] });

  it('cpuPercent: ticks of 10 ms over the wall time between readings, % of one core', () => {
    expect(cpuPercent(undefined, { cpuTicks: 100, at: 1000 })).toBeNull();
    expect(cpuPercent({ cpuTicks: 100, at: 0 }, { cpuTicks: 150, at: 1000 })).toBe(50);
    expect(cpuPercent({ cpuTicks: 0, at: 0 }, { cpuTicks: 400, at: 2000 })).toBe(200); // two cores busy
    expect(cpuPercent({ cpuTicks: 0, at: 0 }, { cpuTicks: 1, at: 3000 })).toBe(0.3);
    expect(cpuPercent({ cpuTicks: 100, at: 0 }, { cpuTicks: 90, at: 1000 })).toBeNull(); // the tree lost time
    expect(cpuPercent({ cpuTicks: 100, at: 1000 }, { cpuTicks: 200, at: 1000 })).toBeNull(); // no time passed
  });

  it('treeOf: the root and every descendant by parent PID, nothing else; a loop ends', () => {
    const procs = [p(1, 0, 0), p(10, 1, 5), p(11, 10, 7), p(12, 11, 1), p(20, 1, 100), p(13, 10, 2)];
    expect(
      treeOf(procs, 10)
        .map((x) => x.pid)
        .sort(),
    ).toEqual([10, 11, 12, 13]);
    expect(treeUsage(treeOf(procs, 10))).toEqual({ cpuTicks: 15, rssBytes: 4 * 10 * 4096, processes: 4 });
    expect(treeOf(procs, 99)).toEqual([]);
    expect(treeOf([p(5, 6, 0), p(6, 5, 0)], 5)).toHaveLength(2);
  });

  it('parseStat: a name with spaces and parentheses; utime+stime+cutime+cstime; rss in pages', () => {
    const fields = ['S', '1', '42', '42', '0', '-1', '4194560', '0', '0', '0', '0', '30', '12', '5', '3', '20', '0', '1', '0', '777', '1000', '250'];
    const st = parseStat(42, `42 (a) b (c) ${fields.join(' ')}`)!;
    expect(st).toEqual({ pid: 42, ppid: 1, state: 'S', startTicks: '777', cpuTicks: 50, rssPages: 250 });
    expect(parseStat(1, 'garbage')).toBeUndefined();
  });
});

describe('the terminal', () => {
  it('drawText: home, each line cleared first; no newline after a frame as tall as the screen', () => {
    expect(drawText(['a', 'b'], 2)).toBe('\u001b[H\u001b[2Ka\r\n\u001b[2Kb');
    expect(drawText(['a'], 5)).toBe('\u001b[H\u001b[2Ka\r\n\u001b[J');
  });

  it('q, Q and Ctrl-C leave; other keys do not', () => {
    expect(isQuitKey('q')).toBe(true);
    expect(isQuitKey(Buffer.from([0x03]))).toBe(true);
    expect(isQuitKey('Q')).toBe(true);
    expect(isQuitKey('x')).toBe(false);
    expect(isQuitKey('\u001b[A')).toBe(false);
    expect(LEAVE).toContain('?25h');
  });

  it('Screen: raw mode and the alternate screen while open; on close (twice is once) the keyboard mode as it was, and on process exit too', () => {
    const written: string[] = [];
    const listeners = new Map<string, (...a: never[]) => void>();
    const out: TermOut = { write: (x) => written.push(x), columns: 50, rows: 10, on: (e, f) => listeners.set(`out:${e}`, f), removeListener: (e) => listeners.delete(`out:${e}`) };
    const modes: boolean[] = [];
    const input: TermIn = {
      isTTY: true,
      isRaw: false,
      setRawMode: (r) => modes.push(r),
      on: (e, f) => listeners.set(`in:${e}`, f),
      removeListener: (e) => listeners.delete(`in:${e}`),
      resume: () => undefined,
      pause: () => undefined,
    };
    let quits = 0;
    const exitBefore = process.listenerCount('exit');
    const screen = new Screen(
      out,
      input,
      () => quits++,
      () => undefined,
    );
    screen.open();
    expect(written).toEqual([ENTER]);
    expect(modes).toEqual([true]);
    expect(process.listenerCount('exit')).toBe(exitBefore + 1);
    expect(screen.size()).toEqual({ width: 50, height: 10 });
    (listeners.get('in:data') as (d: string) => void)('x');
    (listeners.get('in:data') as (d: string) => void)('q');
    expect(quits).toBe(1);
    screen.close();
    screen.close();
    expect(written).toEqual([ENTER, LEAVE]);
    expect(modes).toEqual([true, false]);
    expect(listeners.size).toBe(0);
    expect(process.listenerCount('exit')).toBe(exitBefore);
  });

  it('parseInterval: at least 100ms, a unit needed, one line naming the flag', () => {
    expect(parseInterval('1s', '--watch')).toBe(1000);
    expect(parseInterval('100ms', 'interval')).toBe(100);
    expect(thrown(UsageError, () => parseInterval('99ms', '--watch')).message).toBe('--watch: 99ms is too short; expected an interval of at least 100ms');
    expect(thrown(UsageError, () => parseInterval('2', 'interval')).message).toMatch(/^interval: invalid duration "2"/);
    expect(thrown(UsageError, () => parseInterval('30d', 'interval')).message).toMatch(/out of range/);
  });

  it('parsePorts reads a row as untrusted', () => {
    expect(parsePorts('[3000,3001]')).toEqual([3000, 3001]);
    expect(parsePorts('[0, 70000, "x", 1.5, 8080]')).toEqual([8080]);
    expect(parsePorts('{"a":1}')).toEqual([]);
    expect(parsePorts('not json')).toEqual([]);
    expect(parsePorts(null)).toEqual([]);
  });
});

describe('LiveGatherer', () => {
  let t: ReturnType<typeof tempDir>;
  let state: State;
  beforeEach(() => {
    t = tempDir();
    state = State.open(t.dir);
  });
  afterEach(() => {
    state.close();
    t.cleanup();
  });

  const me = getIdentity(process.pid)!;
  const insert = (id: string, name: string, startedAt: number, endedAt: number | null, pid: number | null = process.pid) =>
    state.db
      .prepare(
        `INSERT INTO runs (id, name, grp, priority, mode, state, pid, start_time, boot_id, pgid, sup_pid, sup_start_time, command, cwd, started_at, ended_at)
         VALUES (?, ?, 'default', 2, 'foreground', ?, ?, ?, ?, ?, ?, ?, '["x"]', '/', ?, ?)`,
      )
      .run(id, name, endedAt === null ? 'running' : 'exited', pid, me.startTime, bootId(), pid, pid, me.startTime, startedAt, endedAt);

  it('restarts: earlier runs of the same name still in the history; CPU % from the second frame, over the tree', async () => {
    const host = new FakeHost();
    const now = host.now;
    insert('r00000000000a01', 'w', now - 50_000, now - 40_000);
    insert('r00000000000a02', 'w', now - 30_000, now - 20_000);
    insert('r00000000000b01', 'other', now - 30_000, now - 20_000);
    insert('r00000000000a03', 'w', now - 10_000, null);
    insert('r00000000000c01', 'solo', now - 10_000, null);
    let ticks = 1000;
    const walk = (): LiveProc[] => [
      { pid: process.pid, ppid: 1, state: 'S', startTicks: me.startTime, cpuTicks: ticks, rssPages: 100, argv: ['node'] },
      { pid: 999_999_1, ppid: process.pid, state: 'S', startTicks: '5', cpuTicks: ticks, rssPages: 50, argv: ['child'] },
    ];
    const g = new LiveGatherer({ ...host.deps(), config: loadConfig({ defaultsOnly: true }), state, command: 'top', intervalMs: 1000, walk });
    const first = await g.next();
    expect(first.runs.map((r) => [r.name, r.restarts, r.cpu_pct, r.processes, r.rss_bytes])).toEqual([
      ['w', 2, null, 2, 150 * 4096],
      ['solo', 0, null, 2, 150 * 4096],
    ]);
    host.advance(2000);
    ticks += 50; // each of the two processes: 50 ticks (500 ms) in 2 s
    const second = await g.next();
    expect(second.runs.map((r) => r.cpu_pct)).toEqual([50, 50]);
    expect(second.host).toMatchObject({ managed: 2 });
  });

  it('queue counts only waiters whose process still runs; breakers open, half-open and host', async () => {
    const host = new FakeHost();
    const q = state.db.prepare('INSERT INTO queue (name, grp, priority, pid, start_time, boot_id, enqueued_at) VALUES (?, ?, 2, ?, ?, ?, 0)');
    q.run('a', 'default', process.pid, me.startTime, bootId());
    q.run('b', 'default', process.pid, '1', bootId()); // the PID is someone else's now
    const h = state.db.prepare('INSERT INTO health (name, value, updated_at) VALUES (?, ?, 0)');
    h.run('open-one', JSON.stringify({ mode: 'open', consecutiveFailures: 5, lastFailure: 'crash', notBefore: host.now + 60_000, openedAt: host.now, reason: 'x' }));
    h.run('half-one', JSON.stringify({ mode: 'open', consecutiveFailures: 5, lastFailure: 'crash', notBefore: host.now - 1, openedAt: host.now - 60_000, reason: 'x' }));
    h.run('closed-one', JSON.stringify({ mode: 'closed', consecutiveFailures: 1, lastFailure: 'crash', notBefore: 0, openedAt: null, reason: null }));
    h.run('garbage', '{not json');
    state.setKv('breaker.host', { notBefore: host.now + 60_000 }, host.now);
    const walk = (): LiveProc[] => [{ pid: process.pid, ppid: 1, state: 'S', startTicks: me.startTime, cpuTicks: 1, rssPages: 1, argv: ['node'] }];
    const g = new LiveGatherer({ ...host.deps(), config: loadConfig({ defaultsOnly: true }), state, command: 'top', intervalMs: 1000, walk });
    const s = await g.next();
    expect(s.queue).toEqual({ waiting: 1 });
    expect(s.breakers).toEqual({ open: ['open-one'], half_open: ['half-one'], host_open: true });
    expect(s.runs).toEqual([]);
  });
});
