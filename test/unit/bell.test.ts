/**
 * The slot bell (src/core/bell.ts) and the after-commit hook it rings from: real SQLite
 * files and real file watching in a temp folder.
 */
import { existsSync, statSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BellListener, bellPath, ringAfterCommit } from '../../src/core/bell.js';
import { State } from '../../src/core/state.js';
import { tempDir } from '../helpers.js';

let t: ReturnType<typeof tempDir>;
let s: State;
beforeEach(() => {
  t = tempDir();
  s = State.open(t.dir);
});
afterEach(() => {
  s.close();
  t.cleanup();
});

describe('State.afterCommit', () => {
  it('runs once the outermost write commits, not before', () => {
    const seen: string[] = [];
    s.write(() => {
      s.afterCommit(() => seen.push('outer'));
      s.write(() => s.afterCommit(() => seen.push('inner')));
      seen.push('still in the transaction');
    });
    expect(seen).toEqual(['still in the transaction', 'outer', 'inner']);
  });
  it('never runs when the write rolls back, and the next write starts clean', () => {
    const seen: string[] = [];
    expect(() =>
      s.write(() => {
        s.afterCommit(() => seen.push('rolled back'));
        throw new Error('boom');
      }),
    ).toThrow('boom');
    s.write(() => s.afterCommit(() => seen.push('committed')));
    expect(seen).toEqual(['committed']);
  });
  it('runs at once outside a write', () => {
    const seen: string[] = [];
    s.afterCommit(() => seen.push('now'));
    expect(seen).toEqual(['now']);
  });
});

describe('slot bell', () => {
  it('a listener creates the bell without ringing it', () => {
    const l = new BellListener(bellPath(s));
    try {
      expect(existsSync(bellPath(s))).toBe(true);
      expect(statSync(bellPath(s)).size).toBe(0);
    } finally {
      l.close();
    }
  });
  it("a ring after a write ends a listener's wait long before its own timer", async () => {
    const l = new BellListener(bellPath(s));
    try {
      expect(l.watching).toBe(true);
      const woke = l.wait(60_000).then(() => 'woke');
      s.write(() => ringAfterCommit(s));
      const guard = new Promise<string>((resolve) => setTimeout(() => resolve('still waiting after 5 s'), 5_000).unref());
      expect(await Promise.race([woke, guard])).toBe('woke');
    } finally {
      l.close();
    }
  });
  it('close ends a pending wait', async () => {
    const l = new BellListener(bellPath(s));
    const waiting = l.wait(60_000).then(() => 'ended');
    l.close();
    expect(await waiting).toBe('ended');
  });
});
