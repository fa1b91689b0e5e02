/**
 * Reading a run's log (src/core/runs/logs.ts): lines of a window, the last N lines across
 * `<log>.prev`, and following a log across caps made by the real capLog, without losing or
 * repeating a line. Files in a temp folder; no processes.
 */
import { appendFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { capLog } from '../../src/core/runs/files.js';
import { lastOf, LogFollower, readTail, splitLog } from '../../src/core/runs/logs.js';
import { tempDir } from '../helpers.js';

let t: ReturnType<typeof tempDir>;
beforeEach(() => {
  t = tempDir();
});
afterEach(() => t.cleanup());

const b = (s: string) => Buffer.from(s);
const numbered = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `line ${String(from + i).padStart(5, '0')} ${'x'.repeat(40)}\n`).join('');

describe('splitLog', () => {
  it('splits complete lines and keeps the one being written apart', () => {
    expect(splitLog(b('a\nb\nc'), true)).toEqual({ lines: ['a', 'b'], partial: 'c' });
    expect(splitLog(b('a\nb\n'), true)).toEqual({ lines: ['a', 'b'], partial: undefined });
    expect(splitLog(b(''), true)).toEqual({ lines: [], partial: undefined });
    expect(splitLog(b('\n\n'), true)).toEqual({ lines: ['', ''], partial: undefined });
  });

  it("drops the first line of a window that does not start at the log's start", () => {
    expect(splitLog(b('ment\nb\n'), false).lines).toEqual(['b']);
  });

  it(".prev comes first, its first line (cut mid-line) dropped, its last joined to the log's first", () => {
    expect(splitLog(b('st\nx\ny-'), true, b('fir'))).toEqual({ lines: ['x'], partial: 'y-' }); // 'fir' + 'st': the cut line, dropped
    expect(splitLog(b('half\nz\n'), true, b('gment\nx\ny-'))).toEqual({ lines: ['x', 'y-half', 'z'], partial: undefined });
  });
});

describe('lastOf', () => {
  const l = { lines: ['a', 'b', 'c'], partial: 'd' };
  it('gives the last n, the line being written last when asked', () => {
    expect(lastOf(l, 2, true)).toEqual(['c', 'd']);
    expect(lastOf(l, 2, false)).toEqual(['b', 'c']);
    expect(lastOf(l, 10, true)).toEqual(['a', 'b', 'c', 'd']);
    expect(lastOf(l, 0, true)).toEqual([]);
  });
});

describe('readTail', () => {
  it('reads the last lines of a big log from a window at its end', () => {
    const log = join(t.dir, 'a.log');
    writeFileSync(log, numbered(1, 20000), { mode: 0o600 });
    const r = readTail(log, 3);
    if (!r.ok) throw new Error(r.why);
    expect(lastOf(r.tail, 3, true).map((s) => s.slice(0, 10))).toEqual(['line 19998', 'line 19999', 'line 20000']);
  });

  it('reaches into .prev when a capped log holds fewer lines than asked for', () => {
    const log = join(t.dir, 'a.log');
    writeFileSync(log, numbered(1, 200), { mode: 0o600 });
    expect(capLog(log, 4096)).toBe(true);
    appendFileSync(log, numbered(201, 205));
    const r = readTail(log, 20);
    if (!r.ok) throw new Error(r.why);
    expect(lastOf(r.tail, 20, true).map((s) => s.slice(0, 10))).toEqual(Array.from({ length: 20 }, (_, i) => `line ${String(186 + i).padStart(5, '0')}`));
    // more than .prev and the log hold: what there is, .prev's cut first line left out
    const all = lastOf(r.tail, 1000, true);
    expect(all.every((s) => /^line \d{5} x{40}$/.test(s))).toBe(true);
    expect(all.at(-1)!.slice(0, 10)).toBe('line 00205');
  });

  it('refuses a symlink in place of the log, and tells a missing log apart', () => {
    const target = join(t.dir, 'secret');
    writeFileSync(target, 'do not read\n', { mode: 0o600 });
    symlinkSync(target, join(t.dir, 'l.log'));
    expect(readTail(join(t.dir, 'l.log'), 10)).toEqual({ ok: false, why: 'refused' });
    expect(readTail(join(t.dir, 'none.log'), 10)).toEqual({ ok: false, why: 'missing' });
  });
});

describe('LogFollower', () => {
  const follow = (log: string, n: number) => {
    const r = readTail(log, n);
    if (!r.ok) throw new Error(r.why);
    return { first: lastOf(r.tail, n, false), f: new LogFollower(log, r.tail) };
  };

  it('prints complete lines as they are written, a line being written once it ends', () => {
    const log = join(t.dir, 'a.log');
    writeFileSync(log, 'a\nb\npart', { mode: 0o600 });
    const { first, f } = follow(log, 10);
    expect(first).toEqual(['a', 'b']);
    expect(f.step().lines).toEqual([]);
    appendFileSync(log, 'ial\nc\nd');
    expect(f.step().lines).toEqual(['partial', 'c']);
    expect(f.rest()).toBe('d');
  });

  it('goes on across caps without losing or repeating a line', () => {
    const log = join(t.dir, 'a.log');
    writeFileSync(log, numbered(1, 10), { mode: 0o600 });
    const { first, f } = follow(log, 1000);
    const seen = [...first];
    let next = 11;
    for (let round = 0; round < 30; round++) {
      appendFileSync(log, numbered(next, next + 6));
      next += 7;
      if (round % 2 === 0) seen.push(...f.step().lines);
      // a line cut in half by the cap: its start goes to .prev, its end to the log
      if (round % 3 === 0) appendFileSync(log, `line ${String(next).padStart(5, '0')} ${'x'.repeat(20)}`);
      capLog(log, 4096);
      if (round % 3 === 0) {
        appendFileSync(log, `${'x'.repeat(20)}\n`);
        next++;
      }
      const s = f.step();
      expect(s.gap).toBe(false);
      seen.push(...s.lines);
    }
    expect(seen.map((s) => Number(s.slice(5, 10)))).toEqual(Array.from({ length: next - 1 }, (_, i) => i + 1));
    expect(seen.every((s) => /^line \d{5} x{40}$/.test(s))).toBe(true);
  });

  it('says so when it fell behind by more than .prev holds', () => {
    const log = join(t.dir, 'a.log');
    writeFileSync(log, numbered(1, 3), { mode: 0o600 });
    const { f } = follow(log, 10);
    appendFileSync(log, numbered(4, 400));
    capLog(log, 4096);
    const s = f.step();
    expect(s.gap).toBe(true);
    expect(s.lines.at(-1)!.slice(0, 10)).toBe('line 00400');
  });

  it('stops when a link is planted in place of the log', () => {
    const log = join(t.dir, 'a.log');
    writeFileSync(log, 'a\n', { mode: 0o600 });
    const { f } = follow(log, 10);
    const target = join(t.dir, 'secret');
    writeFileSync(target, 'a\nsecret\n', { mode: 0o600 });
    rmSync(log);
    symlinkSync(target, log);
    expect(f.step()).toEqual({ lines: [], gap: false, lost: 'refused' });
    rmSync(log);
    expect(f.step().lost).toBe('missing');
  });
});

describe('LogFollower without a new .prev', () => {
  it('neither replays an old .prev when the log is cut short, nor re-reads the log when .prev is removed', () => {
    const log = join(t.dir, 'a.log');
    writeFileSync(log, numbered(1, 100), { mode: 0o600 });
    capLog(log, 4096);
    appendFileSync(log, numbered(101, 103));
    const r = readTail(log, 0);
    if (!r.ok) throw new Error(r.why);
    const f = new LogFollower(log, r.tail);
    rmSync(`${log}.prev`);
    appendFileSync(log, numbered(104, 104));
    expect(f.step().lines.map((s) => s.slice(0, 10))).toEqual(['line 00104']);
    writeFileSync(log, numbered(105, 105)); // cut short by someone else, no .prev: go on from its start
    expect(f.step().lines.map((s) => s.slice(0, 10))).toEqual(['line 00105']);
  });
});
