/**
 * Status lines: the words core's waits use (core/progress.ts), and the terminal's line
 * (src/cli/progress.ts): when it shows, how it is cut to the terminal, that it redraws only
 * what changed and erases itself, and that the context hands out a line only to a terminal.
 */
import { describe, expect, it } from 'vitest';
import { createCtx } from '../../src/cli/context.js';
import { ERASE, fitLine, REDRAW_MS, SHOW_AFTER_MS, showProgress, TtyProgress } from '../../src/cli/progress.js';
import { NO_PROGRESS } from '../../src/core/ctx.js';
import { elapsedSince, envGcText, formatElapsed, graceTail, levelWaitText, ordinal, spawnWaitText, stopText, timeoutTail, waitText } from '../../src/core/progress.js';
import type { Refusal } from '../../src/core/spawn/admission.js';

describe('words', () => {
  it('ordinal: 1st 2nd 3rd 4th, the teens th, 21st 22nd 23rd, 101st 111th 112th', () => {
    const got = [1, 2, 3, 4, 10, 11, 12, 13, 14, 21, 22, 23, 100, 101, 111, 112, 113, 121].map(ordinal);
    expect(got).toEqual(['1st', '2nd', '3rd', '4th', '10th', '11th', '12th', '13th', '14th', '21st', '22nd', '23rd', '100th', '101st', '111th', '112th', '113th', '121st']);
  });

  it('formatElapsed counts whole seconds as a clock does: never rounds up, never ms', () => {
    expect([0, 400, 999, 1000, 1999, 12_500, 59_999, 65_000, 3_723_000].map(formatElapsed)).toEqual(['0s', '0s', '0s', '1s', '1s', '12s', '59s', '1m 5s', '1h 2m']);
    expect(formatElapsed(-5)).toBe('0s');
  });

  it('tails: elapsed since the wait began, of a timeout, of a grace', () => {
    expect(elapsedSince(2000)(500)).toBe(', 2s');
    expect(timeoutTail(60_000)(12_000)).toBe(', 12s of 1m');
    expect(timeoutTail(60_000, 1500)(1000)).toBe(', 2s of 1m');
    expect(graceTail(10_000)(3_200)).toBe(': 3s of 10s grace');
    expect(graceTail(10_000)(10_400)).toBe(': grace of 10s over, killing (10s)');
  });

  const refusal = (r: Partial<Refusal>): Refusal => ({ admit: false, reason: 'no_slot', exitCode: 75, message: 'm', ...r });
  const req = { name: 'w3', group: 'claude' };

  it('spawn --wait: the slot, the place in the queue (1 + waiters ahead), the slots in use', () => {
    expect(spawnWaitText(req, refusal({ slot: { used: 2, limit: 2, kind: 'group' } }), 2, 0)).toBe('waiting for a slot in group claude: 3rd in queue, 2 of 2 running');
    expect(spawnWaitText(req, refusal({ slot: { used: 1, limit: 1, kind: 'host' } }), 0, 0)).toBe('waiting for an agent slot on the host: 1st in queue, 1 of 1 agents (throttle level cap)');
  });

  it('spawn --wait: backoff, cooldown and the rate limit say when to retry, rounded up', () => {
    expect(spawnWaitText(req, refusal({ reason: 'backoff', retryAt: 40_500 }), 0, 1_000)).toBe("waiting for w3's backoff after a failure, retry in 40s");
    expect(spawnWaitText(req, refusal({ reason: 'cooldown', retryAt: 2_001 }), 0, 1_000)).toBe("waiting for w3's cooldown, retry in 2s");
    expect(spawnWaitText(req, refusal({ reason: 'rate_limit' }), 0, 1_000)).toBe("waiting for the host's spawn rate limit");
    expect(spawnWaitText(req, refusal({ reason: 'no_ports' }), 1, 0)).toBe('waiting for free ports: 2nd in queue');
  });

  it('stop: one run by name and PID, several counted, a long list cut', () => {
    expect(stopText([{ name: 'worker-1', pid: 8374 }])).toBe('stopping worker-1 (pid 8374)');
    expect(
      stopText([
        { name: 'a', pid: 1 },
        { name: 'b', pid: null },
      ]),
    ).toBe('stopping 2 runs: a (pid 1), b');
    expect(stopText(['a', 'b', 'c', 'd'].map((name) => ({ name, pid: 7 })))).toBe('stopping 4 runs: a (pid 7), b (pid 7), c (pid 7), …');
  });

  it('wait, throttle-status --wait-level and env-gc', () => {
    expect(waitText(['build'], false)).toBe('waiting for build');
    expect(waitText(['a', 'b', 'c'], false)).toBe('waiting for 3 runs: a, b, c');
    expect(waitText(['a', 'b'], true)).toBe('waiting for the first of 2 runs: a, b');
    expect(waitText(['a', 'b', 'c', 'd', 'e', 'f'], false)).toBe('waiting for 6 runs: a, b, c, d, e, …');
    expect(levelWaitText({ throttle_level: 3, throttle_params: { name: 'heavy' }, reasons: ['memory 62% >= 60%', 'load'] }, 1)).toBe(
      'waiting for throttle level 1 or below: level 3 heavy: memory 62% >= 60%; load',
    );
    expect(levelWaitText({ throttle_level: 2, throttle_params: { name: 'medium' }, reasons: [] }, 0)).toBe('waiting for throttle level 0 or below: level 2 medium');
    expect(envGcText(12, 80, false)).toBe('removing environments: 12 of 80');
    expect(envGcText(3, 9, true)).toBe('checking environments: 3 of 9');
  });
});

describe('fitLine', () => {
  it('leaves a line that fits as it is', () => {
    expect(fitLine('waiting for build', ', 3s', 80)).toBe('waiting for build, 3s');
  });

  it('cuts what is waited for with … and keeps the clock whole, within columns - 1', () => {
    const line = fitLine('waiting for 3 runs: alpha, beta, gamma', ', 45s', 30);
    expect(line).toBe('waiting for 3 runs: alp…, 45s');
    expect(line.length).toBe(29);
  });

  it('a terminal too narrow even for the tail gets the whole line cut', () => {
    expect(fitLine('waiting', ': 3s of 10s grace', 10)).toBe('waiting:…');
    expect(fitLine('waiting', ', 1s', 1)).toBe('…');
  });

  it('escapes control characters, counting the escapes in the width', () => {
    expect(fitLine('stopping \u001b]0;PWNED\u0007x', ', 1s', 80)).toBe('stopping \\x1b]0;PWNED\\x07x, 1s');
    // an escape is never cut in half: `\x1b` does not fit beside the …, so it goes whole
    expect(fitLine('a\u001bbcdefgh', '\r', 8)).toBe('a…\\r');
    expect(fitLine('a\u001bbcdefgh', '\r', 9)).toBe('a\\x1b…\\r');
  });
});

describe('showProgress', () => {
  const on = { isTTY: true, quiet: false, json: false, term: 'xterm-256color' };
  it('only on a terminal, not under --quiet or --json, not on TERM=dumb', () => {
    expect(showProgress(on)).toBe(true);
    expect(showProgress({ ...on, term: undefined })).toBe(true);
    expect(showProgress({ ...on, isTTY: false })).toBe(false);
    expect(showProgress({ ...on, quiet: true })).toBe(false);
    expect(showProgress({ ...on, json: true })).toBe(false);
    expect(showProgress({ ...on, term: 'dumb' })).toBe(false);
  });
});

/** A terminal stream that records what is written, a clock the test moves, and a timer it fires. */
function terminal(columns: number | undefined = 80) {
  const out: string[] = [];
  const clock = { now: 1_000_000 };
  let tick: (() => void) | undefined;
  let timers = 0;
  let stopped = 0;
  const p = new TtyProgress(
    { write: (s: string) => out.push(s), isTTY: true, columns },
    {
      now: () => clock.now,
      columns: () => columns,
      every: (ms, fn) => {
        expect(ms).toBe(REDRAW_MS);
        tick = fn;
        timers++;
        return () => stopped++;
      },
    },
  );
  return {
    p,
    out,
    /** let `ms` pass, firing the redraw timer */
    pass(ms: number) {
      clock.now += ms;
      tick?.();
    },
    timers: () => timers,
    stopped: () => stopped,
  };
}

describe('TtyProgress', () => {
  it('a quick wait draws nothing: no line, no erase', () => {
    const t = terminal();
    t.p.update('waiting for build');
    t.pass(SHOW_AFTER_MS - 1);
    t.p.done();
    expect(t.out).toEqual([]);
    expect(t.stopped()).toBe(1);
  });

  it('shows after SHOW_AFTER_MS, redraws in place as the clock moves, erases when done', () => {
    const t = terminal();
    t.p.update('waiting for build');
    t.pass(SHOW_AFTER_MS);
    expect(t.out).toEqual([`${ERASE}waiting for build, 0s`]);
    t.pass(REDRAW_MS); // same second: the same line is not written again
    expect(t.out).toHaveLength(1);
    t.pass(1000);
    expect(t.out.at(-1)).toBe(`${ERASE}waiting for build, 1s`);
    t.p.done();
    expect(t.out.at(-1)).toBe(ERASE);
    t.pass(5000);
    t.p.update('after done');
    expect(t.out.at(-1)).toBe(ERASE); // nothing after done
    expect(t.timers()).toBe(1);
  });

  it('draws from update itself, for a loop that never lets the timer run, but not more often than REDRAW_MS', () => {
    const t = terminal();
    t.p.update('removing environments: 0 of 3');
    expect(t.out).toEqual([]);
    t.pass(SHOW_AFTER_MS);
    t.out.length = 0;
    t.pass(REDRAW_MS);
    t.p.update('removing environments: 1 of 3'); // REDRAW_MS after the last draw: drawn at once
    expect(t.out).toEqual([`${ERASE}removing environments: 1 of 3, 0s`]);
    t.p.update('removing environments: 2 of 3'); // at once: waits for the next redraw
    expect(t.out).toHaveLength(1);
  });

  it('clear erases for other output; the next tick draws the line again', () => {
    const t = terminal();
    t.p.update('waiting');
    t.pass(SHOW_AFTER_MS);
    t.p.clear();
    expect(t.out.at(-1)).toBe(ERASE);
    t.pass(1);
    expect(t.out.at(-1)).toBe(`${ERASE}waiting, 0s`);
  });

  it('fits the terminal: cut to columns - 1; 80 columns when the terminal reports 0 or none', () => {
    const narrow = terminal(20);
    narrow.p.update('waiting for 3 runs: alpha, beta, gamma');
    narrow.pass(SHOW_AFTER_MS);
    expect(narrow.out[0]).toBe(`${ERASE}waiting for 3 …, 0s`);
    for (const cols of [0, undefined]) {
      const t = terminal(cols);
      t.p.update('x'.repeat(200));
      t.pass(SHOW_AFTER_MS);
      expect(t.out[0]!.length - ERASE.length).toBe(79);
    }
  });

  it('the tail is the caller’s: a grace counted against its length', () => {
    const t = terminal();
    t.p.update('stopping worker-1 (pid 8374)', graceTail(10_000));
    t.pass(3_000);
    expect(t.out.at(-1)).toBe(`${ERASE}stopping worker-1 (pid 8374): 3s of 10s grace`);
  });
});

describe('ctx.progress()', () => {
  const make = (stderr: { isTTY?: boolean; columns?: number }, globals: { json?: boolean; quiet?: boolean } = {}, env: NodeJS.ProcessEnv = {}) => {
    const err: string[] = [];
    let now = 0;
    const ctx = createCtx({
      globals: { json: Boolean(globals.json), quiet: Boolean(globals.quiet) },
      env,
      stdout: { write: () => true },
      stderr: { write: (s: string) => err.push(s), ...stderr },
      colorOut: false,
      colorErr: false,
      now: () => now,
    });
    return { ctx, err, at: (ms: number) => (now = ms) };
  };

  it('is the no-op on a pipe, under --quiet, under --json and on TERM=dumb', () => {
    expect(make({}).ctx.progress()).toBe(NO_PROGRESS);
    expect(make({ isTTY: true }, { quiet: true }).ctx.progress()).toBe(NO_PROGRESS);
    expect(make({ isTTY: true }, { json: true }).ctx.progress()).toBe(NO_PROGRESS);
    expect(make({ isTTY: true }, {}, { TERM: 'dumb' }).ctx.progress()).toBe(NO_PROGRESS);
  });

  it('on a terminal draws a line, erased before a note and when the context closes', () => {
    const { ctx, err, at } = make({ isTTY: true, columns: 100 });
    const p = ctx.progress();
    expect(p).not.toBe(NO_PROGRESS);
    p.update('waiting for build');
    at(SHOW_AFTER_MS);
    p.update('waiting for build');
    expect(err).toEqual([`${ERASE}waiting for build, 0s`]);
    ctx.note('agentctl: a warning');
    expect(err.slice(1)).toEqual([ERASE, 'agentctl: a warning\n']);
    at(SHOW_AFTER_MS + 1000);
    p.update('waiting for build');
    ctx.close();
    expect(err.slice(3)).toEqual([`${ERASE}waiting for build, 1s`, ERASE]);
  });
});
