import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type AdmissionFacts, decide } from '../../src/core/spawn/admission.js';
import { afterRun, backoffMs, classifyExit, DEFAULT_POLICY, FAILURE_TYPES, HEALTHY, hostBreakerAfter, modeAt, type NameHealth } from '../../src/core/policy.js';
import { OOM_MESSAGE, ownChildTicks, parseExitFile, parseVmHwm, parseVmRss, readMemory, readPeakRss, runLimits } from '../../src/core/runs/usage.js';
import { decodeShellStatus } from '../../src/core/runs/end.js';
import { newRunId } from '../../src/core/runs/registry.js';
import { BELL_POLL_MS, couldTakeNextSlot, FAST_POLLERS, pollDelay } from '../../src/core/spawn/wait.js';
import { percentile } from '../../src/commands/stats.js';

const MIN_UP = 10_000;

describe('classifyExit', () => {
  const base = { exitCode: 0, signal: null, runtimeMs: 60_000, timedOut: false, oom: false };
  it.each([
    [{}, null],
    [{ exitCode: 1, runtimeMs: 9_999 }, 'startup_error'],
    [{ exitCode: 1, runtimeMs: 10_000 }, 'crash'],
    [{ exitCode: 0, runtimeMs: 100 }, null], // a quick success is a success
    [{ exitCode: null, signal: 'SIGKILL' }, 'killed'],
    [{ exitCode: null, signal: 'SIGSEGV' }, 'crash'],
    [{ exitCode: null, signal: 'SIGTERM', timedOut: true }, 'timeout'],
    [{ exitCode: null, signal: 'SIGKILL', oom: true }, 'oom'],
    [{ exitCode: null, signal: 'SIGTERM', stoppedByUs: true }, null],
    // limits: only for a run started under them, and before startup_error (a quick death by a limit is the limit's)
    [{ exitCode: null, signal: 'SIGXCPU', runtimeMs: 100, cpuLimitSec: 1 }, 'cpu_limit'],
    [{ exitCode: 152, runtimeMs: 100, cpuLimitSec: 1 }, 'cpu_limit'], // a shell's 128 + SIGXCPU
    [{ exitCode: null, signal: 'SIGXCPU', runtimeMs: 100 }, 'startup_error'], // no --cpu-time: not ours to call
    [{ exitCode: null, signal: 'SIGKILL', runtimeMs: 100, cpuLimitSec: 1, cpuMs: 880 }, 'cpu_limit'],
    [{ exitCode: null, signal: 'SIGKILL', runtimeMs: 100, cpuLimitSec: 1, cpuMs: 740 }, 'startup_error'], // killed before the CPU ran out
    [{ exitCode: null, signal: 'SIGKILL', cpuLimitSec: 1, cpuMs: null }, 'killed'], // CPU unknown: no claim
    [{ exitCode: null, signal: 'SIGKILL', cpuLimitSec: 1, cpuMs: 10, memoryLimited: true }, 'oom'],
    [{ exitCode: null, signal: 'SIGKILL', cpuLimitSec: 1, cpuMs: 1000, memoryLimited: true }, 'cpu_limit'],
    [{ exitCode: null, signal: 'SIGSEGV', runtimeMs: 100, memoryLimited: true }, 'oom'],
    [{ exitCode: null, signal: 'SIGABRT', memoryLimited: true }, 'oom'],
    [{ exitCode: null, signal: 'SIGTRAP', memoryLimited: true }, 'oom'], // V8's "Fatal process OOM"
    [{ exitCode: 134, memoryLimited: true }, 'oom'], // a shell's 128 + SIGABRT
    [{ exitCode: 12, memoryLimited: true }, 'oom'], // ENOMEM
    [{ exitCode: null, signal: 'SIGSEGV' }, 'crash'], // no --memory-max: a crash
    [{ exitCode: null, signal: 'SIGTERM', memoryLimited: true }, 'killed'],
    [{ exitCode: 1, runtimeMs: 100, memoryLimited: true }, 'startup_error'], // exit 1 alone says nothing of memory
    [{ exitCode: 1, runtimeMs: 100, memoryLimited: true, oomMessage: true }, 'oom'], // Python's MemoryError
    [{ exitCode: 1, oomMessage: true }, 'crash'], // the message counts only under --memory-max
    [{ exitCode: 0, memoryLimited: true, oomMessage: true, cpuLimitSec: 1, cpuMs: 5000 }, null], // a success is a success
    [{ exitCode: null, signal: 'SIGKILL', memoryLimited: true, timedOut: true }, 'timeout'],
    [{ exitCode: null, signal: 'SIGKILL', memoryLimited: true, stoppedByUs: true }, null],
  ])('%j -> %s', (f, want) => {
    expect(classifyExit({ ...base, ...f }, MIN_UP)).toBe(want);
  });
});

describe('exit file', () => {
  // a supervisor's /proc/<pid>/stat: cutime 57, cstime 223 (fields 16, 17); its comm may hold ") "
  const stat = (pid: number, comm = 'sh') => `${pid} (${comm}) R 1 ${pid} ${pid} 0 -1 4194304 129 2710 0 0 3 4 57 223 20 0 1 0 2882131 2654208 390 18446744073709551615`;
  it.each([
    ['0\n', 7, { rc: 0, cpuMs: null }], // a supervisor from before usage was recorded
    ['143', 7, { rc: 143, cpuMs: null }],
    [`1\n${stat(7)}\n`, 7, { rc: 1, cpuMs: 2800 }],
    [`1\n${stat(7, 'a) b')}\n`, 7, { rc: 1, cpuMs: 2800 }],
    [`1\n${stat(7)}\n`, null, { rc: 1, cpuMs: 2800 }], // supervisor unknown: the reading still stands
    [`1\n${stat(8)}\n`, 7, { rc: 1, cpuMs: null }], // another process's reading: CPU unknown
    ['0\n\n', 7, { rc: 0, cpuMs: null }], // no /proc: the line stays empty
    ['0\ngarbage\n', 7, { rc: 0, cpuMs: null }],
    [`0\n7 (sh) R 1 7 7 0 -1 0 0 0 0 0 0 0 x y 20 0 1 0 5\n`, 7, { rc: 0, cpuMs: null }],
    ['', 7, undefined], // being written: wait for the next look
    ['256\n', 7, undefined],
    ['12abc\n', 7, undefined],
    ['-1\n', 7, undefined],
    ['1000\n', 7, undefined],
  ])('%j (supervisor %s) -> %j', (text, sup, want) => {
    expect(parseExitFile(text, sup)).toEqual(want);
  });

  it('peak RSS from /proc/<pid>/status, limits from the row, OOM words', () => {
    expect(parseVmHwm('Name:\tnode\nVmPeak:\t  999 kB\nVmHWM:\t   46264 kB\nVmRSS:\t 1 kB\n')).toBe(46264 * 1024);
    expect(parseVmHwm('Name:\tkthreadd\n')).toBeNull();
    expect(parseVmRss('Name:\tnode\nVmHWM:\t   46264 kB\nVmRSS:\t 1 kB\n')).toBe(1024);
    expect(parseVmRss('Name:\tkthreadd\n')).toBeNull();
    // one read of status: the peak beside the RSS of the same moment
    const mem = readMemory(process.pid);
    expect(mem.rssBytes).toBeGreaterThan(0);
    expect(mem.peakRssBytes).toBeGreaterThanOrEqual(mem.rssBytes!);
    expect(runLimits({ limits: '{"memoryMax":67108864,"cpuTimeSec":2}' })).toEqual({ memoryLimited: true, cpuLimitSec: 2 });
    expect(runLimits({ limits: '{}' })).toEqual({ memoryLimited: false, cpuLimitSec: null });
    expect(runLimits({ limits: null })).toEqual({ memoryLimited: false, cpuLimitSec: null });
    expect(runLimits({ limits: '{"memoryMax":"lots","cpuTimeSec":-1}' })).toEqual({ memoryLimited: false, cpuLimitSec: null });
    expect(runLimits({ limits: 'not json' })).toEqual({ memoryLimited: false, cpuLimitSec: null });
    for (const line of [
      'MemoryError',
      'FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory',
      'cannot allocate memory',
      "terminate called after throwing an instance of 'std::bad_alloc'",
      'memory allocation of 1048576 bytes failed',
    ])
      expect(OOM_MESSAGE.test(line)).toBe(true);
    expect(OOM_MESSAGE.test('Error: ENOENT: no such file or directory')).toBe(false);
  });

  it("this process reads its own children's CPU and its peak RSS (Linux)", () => {
    if (process.platform !== 'linux') return;
    expect(ownChildTicks()).toBeGreaterThanOrEqual(0);
    expect(readPeakRss(process.pid)).toBeGreaterThan(1024 * 1024);
    expect(parseExitFile(`0\n${readFileSync('/proc/self/stat', 'utf8')}`, process.pid)!.cpuMs).toBeGreaterThanOrEqual(0);
  });
});

describe('failure types', () => {
  it('limit kills back off like crashes, not like startup errors', () => {
    expect(backoffMs(1, 'cpu_limit')).toBe(DEFAULT_POLICY.failureBackoffMs);
    expect(backoffMs(1, 'oom')).toBe(DEFAULT_POLICY.failureBackoffMs);
    expect(FAILURE_TYPES).toEqual(expect.arrayContaining(['startup_error', 'crash', 'timeout', 'killed', 'oom', 'cpu_limit']));
  });
});

describe('backoff', () => {
  it('startup errors 300 s·2^n, others 60 s·2^n, capped', () => {
    expect([1, 2, 3].map((n) => backoffMs(n, 'startup_error'))).toEqual([300_000, 600_000, 1_200_000]);
    expect([1, 2, 3].map((n) => backoffMs(n, 'crash'))).toEqual([60_000, 120_000, 240_000]);
    expect(backoffMs(20, 'crash')).toBe(DEFAULT_POLICY.maxBackoffMs);
    expect(backoffMs(0, 'crash')).toBe(0);
  });
});

describe('breaker', () => {
  const fail = (h: NameHealth, at: number, failure: 'crash' | 'startup_error' = 'crash', runtimeMs = 1000, startsLastHour = 1) => afterRun(h, { failure, runtimeMs, endedAt: at, startsLastHour });

  it('backs off, then opens after 3 consecutive failures, half-opens after the pause', () => {
    let h = fail(HEALTHY, 0);
    expect(h).toMatchObject({ mode: 'closed', consecutiveFailures: 1, notBefore: 60_000 });
    h = fail(h, 100_000);
    expect(h).toMatchObject({ mode: 'closed', consecutiveFailures: 2, notBefore: 100_000 + 120_000 });
    h = fail(h, 300_000);
    expect(h.mode).toBe('open');
    expect(h.notBefore).toBe(300_000 + DEFAULT_POLICY.breakerPauseMs);
    expect(modeAt(h, h.notBefore - 1)).toBe('open');
    expect(modeAt(h, h.notBefore)).toBe('half_open');
  });

  it('a failed trial opens it again; a success closes it', () => {
    const open = fail(fail(fail(HEALTHY, 0), 1), 2);
    const trialAt = open.notBefore + 5;
    const again = fail(open, trialAt);
    expect(again.mode).toBe('open');
    expect(again.reason).toMatch(/trial run failed/);
    expect(afterRun(open, { failure: null, runtimeMs: 1, endedAt: trialAt, startsLastHour: 4 })).toBe(HEALTHY);
  });

  it('too many restarts in an hour open it even without consecutive failures', () => {
    const h = fail(HEALTHY, 0, 'crash', 1000, 50);
    expect(h.mode).toBe('open');
    expect(h.reason).toMatch(/50 starts in the last hour/);
  });

  it('a long healthy run before a failure starts a new series', () => {
    const two = fail(fail(HEALTHY, 0), 1);
    const after = fail(two, 2, 'crash', DEFAULT_POLICY.resetAfterMs);
    expect(after).toMatchObject({ mode: 'closed', consecutiveFailures: 1 });
  });
});

describe('decide: checks run in order and name their reason', () => {
  const base: AdmissionFacts = {
    now: 1_000_000,
    name: 'w',
    group: 'g',
    health: HEALTHY,
    alive: undefined,
    lastStartOfName: undefined,
    cooldownMs: 0,
    lastStartAny: undefined,
    minIntervalMs: 0,
    requires: [],
    cap: { max: 3, levelMax: 5, level: 0, managed: 0, hostManaged: 0, unmanaged: 0 },
    ahead: 0,
    hostAhead: 0,
  };
  const open: NameHealth = { mode: 'open', consecutiveFailures: 3, lastFailure: 'crash', notBefore: 2_000_000, openedAt: 0, reason: '3 consecutive failures' };

  it('admits when nothing objects, keyed to the tighter of the two caps', () => {
    expect(decide(base)).toEqual({ admit: true, trial: false, slot: { used: 1, limit: 3, kind: 'group' }, host: { used: 1, limit: 5 } });
    expect(decide({ ...base, cap: { ...base.cap, max: undefined, hostManaged: 2 } })).toEqual({ admit: true, trial: false, slot: { used: 3, limit: 5, kind: 'host' }, host: { used: 3, limit: 5 } });
  });
  it('the host breaker refuses every name while open (69), naming the failures and the reset', () => {
    const hostBreaker = { openedAt: 900_000, notBefore: 1_600_000, reason: '6 startup errors in 40s across 6 names', failures: [{ name: 'crashy-5', run_id: 'r1', at: 899_000, exit_code: 1 }] };
    expect(decide({ ...base, hostBreaker })).toMatchObject({
      admit: false,
      reason: 'breaker_open',
      exitCode: 69,
      retryAt: 1_600_000,
      message: expect.stringMatching(/^host breaker open: 6 startup errors .*\(crashy-5 exit 1\).*agentctl breaker reset --host$/),
    });
    expect(decide({ ...base, now: 1_600_001, hostBreaker }).admit).toBe(true);
  });
  it('breaker before everything (69)', () => {
    expect(decide({ ...base, health: open, alive: { runId: 'r', pid: 1 } })).toMatchObject({ admit: false, reason: 'breaker_open', exitCode: 69 });
  });
  it('half-open admits one trial', () => {
    expect(decide({ ...base, now: 2_000_001, health: open })).toMatchObject({ admit: true, trial: true });
  });
  it('singleton', () => {
    expect(decide({ ...base, alive: { runId: 'r1', pid: 42 } })).toMatchObject({ reason: 'already_running', exitCode: 75, pid: 42 });
  });
  it('backoff', () => {
    expect(decide({ ...base, health: { ...HEALTHY, consecutiveFailures: 1, notBefore: 1_000_500, reason: 'crash' } })).toMatchObject({ reason: 'backoff', retryAt: 1_000_500 });
  });
  it('cooldown and host rate limit', () => {
    expect(decide({ ...base, cooldownMs: 30_000, lastStartOfName: 990_000 })).toMatchObject({ reason: 'cooldown', retryAt: 1_020_000 });
    expect(decide({ ...base, minIntervalMs: 10_000, lastStartAny: 995_000 })).toMatchObject({ reason: 'rate_limit', retryAt: 1_005_000 });
    expect(decide({ ...base, cooldownMs: 30_000, lastStartOfName: 900_000 }).admit).toBe(true);
  });
  it('dependencies (69)', () => {
    expect(decide({ ...base, requires: [{ name: 'orchestrator', problem: 'not running' }] })).toMatchObject({ reason: 'dependency', exitCode: 69, message: 'w requires orchestrator (not running)' });
  });
  it('the level caps every agent on the host: all groups plus agents agentctl did not start', () => {
    const host = { ...base.cap, max: undefined, managed: 1, hostManaged: 3, unmanaged: 2 };
    expect(decide({ ...base, cap: host })).toMatchObject({
      reason: 'no_slot',
      slot: { used: 5, limit: 5, kind: 'host' },
      message: 'no slot for w: host: 5 of 5 agents at level 0 (3 started by agentctl, 2 other agents); wait with --wait, or see agentctl ps',
    });
    expect(decide({ ...base, cap: { ...host, levelMax: 1, level: 3, hostManaged: 1, unmanaged: 0 } })).toMatchObject({
      reason: 'no_slot',
      message: expect.stringMatching(/host: 1 of 1 agents at level 3/),
    });
    expect(decide({ ...base, cap: { ...host, unmanaged: 1 } })).toMatchObject({ admit: true, slot: { used: 5, limit: 5, kind: 'host' } });
  });
  it('--max caps the group within the host, and is named first when both are full', () => {
    expect(decide({ ...base, cap: { ...base.cap, managed: 3, hostManaged: 5 } })).toMatchObject({
      reason: 'no_slot',
      slot: { used: 3, limit: 3, kind: 'group' },
      message: expect.stringMatching(/group g: 3 of 3 \(--max 3\)/),
    });
    expect(decide({ ...base, cap: { ...base.cap, managed: 2, hostManaged: 2 } })).toMatchObject({ admit: true, slot: { used: 3, limit: 3, kind: 'group' } });
  });
  it('more running than a cap allows reads as over the cap, never "3 of 1"', () => {
    expect(decide({ ...base, cap: { ...base.cap, max: 1, managed: 3, hostManaged: 3 } })).toMatchObject({ reason: 'no_slot', message: expect.stringMatching(/group g: 3 running, over --max 1;/) });
    const over = { ...base.cap, max: undefined, hostManaged: 2, unmanaged: 1, levelMax: 1, level: 3 };
    expect(decide({ ...base, cap: over })).toMatchObject({
      reason: 'no_slot',
      message: expect.stringMatching(/host: 3 agents, over the cap of 1 at level 3 \(2 started by agentctl, 1 other agent\);/),
    });
  });
  it('throttling off (levelMax Infinity): only --max holds', () => {
    expect(decide({ ...base, cap: { ...base.cap, max: undefined, levelMax: Number.POSITIVE_INFINITY, hostManaged: 500 } }).admit).toBe(true);
  });
  it("waiters ahead keep a newcomer out: the group's for the group cap, every group's for the host cap", () => {
    expect(decide({ ...base, ahead: 3 })).toMatchObject({ reason: 'no_slot', message: expect.stringMatching(/group g: 3 free of 3, 3 waiting ahead/) });
    expect(decide({ ...base, ahead: 2 }).admit).toBe(true); // two ahead take two of the three slots
    expect(decide({ ...base, hostAhead: 5 })).toMatchObject({ reason: 'no_slot', slot: { kind: 'host' }, message: expect.stringMatching(/host: 5 free of 5 agents at level 0, 5 waiting ahead/) });
    expect(decide({ ...base, hostAhead: 4 }).admit).toBe(true);
  });
});

describe('hostBreakerAfter: startup errors across all names', () => {
  const fail = (i: number, at: number) => ({ name: `crashy-${i}`, run_id: `r${i}`, at, exit_code: 1 });
  const six = Array.from({ length: 6 }, (_, i) => fail(i, 1_000_000 + i * 1000));
  it('opens on more than 5 in 10 minutes, for the pause, naming the span and the names', () => {
    expect(hostBreakerAfter(undefined, six.slice(0, 5), 1_010_000)).toBeUndefined();
    expect(hostBreakerAfter(undefined, six, 1_010_000)).toEqual({ openedAt: 1_010_000, notBefore: 1_610_000, reason: '6 startup errors in 10s across 6 names (more than 5 in 10m)', failures: six });
  });
  it('counts only the window, stays shut while already open, and 0 turns it off', () => {
    expect(hostBreakerAfter(undefined, six, 1_000_000 + 600_500)).toBeUndefined(); // the oldest left the window
    expect(hostBreakerAfter({ notBefore: 2_000_000 }, six, 1_010_000)).toBeUndefined();
    expect(hostBreakerAfter(undefined, six, 1_010_000, { ...DEFAULT_POLICY, hostBreakerFailures: 0 })).toBeUndefined();
  });
});

describe('pollDelay: how long a waiter sleeps before asking again', () => {
  const noJitter = () => 0;
  it('every waiter that could take a slot freed now asks at the fast rate', () => {
    // 3 slots: the waiters with 0, 1 and 2 ahead can each be admitted as the slots free
    expect([0, 1, 2].map((ahead) => pollDelay(ahead, 3, noJitter))).toEqual([20, 20, 20]);
  });
  it('further back, 30 ms more per place, up to 500 ms', () => {
    expect([3, 4, 5].map((ahead) => pollDelay(ahead, 3, noJitter))).toEqual([50, 80, 110]);
    expect(pollDelay(100, 3, noJitter)).toBe(500);
  });
  it(`a big group keeps its fast pollers to ${FAST_POLLERS}: each ask is a write transaction`, () => {
    expect([0, 1, 2, 3].map((ahead) => pollDelay(ahead, 50, noJitter))).toEqual([20, 20, 20, 20]);
    expect([4, 5].map((ahead) => pollDelay(ahead, 50, noJitter))).toEqual([50, 80]);
  });
  it('without a known limit only the head asks fast', () => {
    expect(pollDelay(0, undefined, noJitter)).toBe(20);
    expect(pollDelay(2, undefined, noJitter)).toBe(80);
    expect(pollDelay(2, Number.POSITIVE_INFINITY, noJitter)).toBe(80);
  });
  it('a waiter that hears the slot bell asks only every 100 ms; those further back are unchanged', () => {
    expect([0, 1, 2].map((ahead) => pollDelay(ahead, 3, noJitter, true))).toEqual([BELL_POLL_MS, BELL_POLL_MS, BELL_POLL_MS]);
    expect(pollDelay(3, 3, noJitter, true)).toBe(50);
    expect([0, 2, 3].map((ahead) => couldTakeNextSlot(ahead, 3))).toEqual([true, true, false]);
    expect(couldTakeNextSlot(1, undefined)).toBe(false);
  });
  it('adds up to 9 ms of jitter so waiters do not ask in lockstep', () => {
    expect(pollDelay(0, 3, () => 0.999)).toBe(29);
  });
  it('the no_slot refusal carries the limit it is keyed to', () => {
    const facts: AdmissionFacts = {
      now: 0,
      name: 'w',
      group: 'g',
      health: HEALTHY,
      alive: undefined,
      lastStartOfName: undefined,
      cooldownMs: 0,
      lastStartAny: undefined,
      minIntervalMs: 0,
      requires: [],
      cap: { max: 3, levelMax: 5, level: 0, managed: 3, hostManaged: 3, unmanaged: 0 },
      ahead: 1,
      hostAhead: 1,
    };
    expect(decide(facts)).toMatchObject({ reason: 'no_slot', slot: { used: 3, limit: 3, kind: 'group' } });
  });
});

describe('run registry helpers', () => {
  it('shell wait statuses', () => {
    expect(decodeShellStatus(0)).toEqual({ exitCode: 0, signal: null });
    expect(decodeShellStatus(7)).toEqual({ exitCode: 7, signal: null });
    expect(decodeShellStatus(143)).toEqual({ exitCode: null, signal: 'SIGTERM' });
    expect(decodeShellStatus(137)).toEqual({ exitCode: null, signal: 'SIGKILL' });
  });
  it('run ids are unique and sort by time', () => {
    const a = newRunId(1_000, 5);
    const b = newRunId(1_000, 5);
    const c = newRunId(2_000_000, 5);
    expect(a).not.toBe(b);
    expect(a < c).toBe(true);
    expect(a).toMatch(/^r[0-9a-z]+$/);
  });
});

describe('percentile (nearest rank)', () => {
  it('matches the textbook examples', () => {
    const xs = [15, 20, 35, 40, 50];
    expect(percentile(xs, 50)).toBe(35);
    expect(percentile(xs, 95)).toBe(50);
    expect(percentile(xs, 30)).toBe(20);
    expect(percentile([], 50)).toBeNull();
    const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
    expect([50, 95, 99].map((p) => percentile(hundred, p))).toEqual([50, 95, 99]);
  });
});
