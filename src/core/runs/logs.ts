/**
 * Reading a detached run's log (`agentctl logs`): its last lines, reaching into `<log>.prev`
 * when the log was capped (core/runs/files.ts capLog: the newest half moved there, the log
 * truncated), and following it as it is written, across caps, until the run ends.
 *
 * Every read goes through core/safefs.ts (O_NOFOLLOW, only plain files of ours), on paths
 * derived from the run's name and id (files.ts logFile), never a stored path.
 */
import { type FSWatcher, lstatSync, watch } from 'node:fs';
import { BellListener, bellPath } from '../bell.js';
import type { LoadedConfig } from '../config/types.js';
import { StateError } from '../errors.js';
import { readOwn, statOwn } from '../safefs.js';
import type { State } from '../state.js';
import { reconcileAll } from './reconcile.js';
import { getRun, type RunRow } from './registry.js';
import { runStatus, WAIT_POLL_MS } from './wait.js';

const NL = 0x0a;

/** The first window read from the end of a log; it grows fourfold until it holds enough lines. */
const TAIL_WINDOW = 64 * 1024;
/** At most this much is read at once while following; a longer backlog is read in several steps. */
const FOLLOW_CHUNK = 1024 * 1024;
/** How many bytes of what was already printed identify the place to go on from after a cap. */
export const ANCHOR_BYTES = 512;

/** Lines of a log, as read from one window of it. */
export interface Lines {
  /** the complete lines (each ended by a newline in the file), oldest first, without the newline */
  readonly lines: readonly string[];
  /** text after the last newline (a line being written), or undefined when the text ends with one */
  readonly partial: string | undefined;
}

/**
 * The lines of a window of a log. `prev`, when given, is the end of `<log>.prev`, which comes
 * right before `cur` (read from the log's start): capLog cut .prev at a byte offset, so its
 * first line is a fragment and is dropped, and its last line goes on at the start of `cur`.
 * Without `prev`, the first line is dropped when `cur` was not read from the log's start.
 */
export function splitLog(cur: Buffer, curFromStart: boolean, prev?: Buffer): Lines {
  const buf = prev ? Buffer.concat([prev, cur]) : cur;
  let start = 0;
  if (prev !== undefined || !curFromStart) {
    const nl = buf.indexOf(NL);
    start = nl < 0 ? buf.length : nl + 1;
  }
  const lines: string[] = [];
  for (let i = start; ;) {
    const nl = buf.indexOf(NL, i);
    if (nl < 0) {
      return { lines, partial: i < buf.length ? buf.toString('utf8', i) : undefined };
    }
    lines.push(buf.toString('utf8', i, nl));
    i = nl + 1;
  }
}

/** The last `n` of the lines, the line being written counted as the last when `withPartial`. */
export function lastOf(l: Lines, n: number, withPartial: boolean): string[] {
  const all = withPartial && l.partial !== undefined ? [...l.lines, l.partial] : [...l.lines];
  return n <= 0 ? [] : all.slice(-n);
}

/** How many lines a window holds (newlines, plus a line being written). */
const countLines = (b: Buffer) => {
  let n = 0;
  for (let i = b.indexOf(NL); i >= 0; i = b.indexOf(NL, i + 1)) n++;
  return b.length > 0 && b[b.length - 1] !== NL ? n + 1 : n;
};

/** The last `bytes` (at most) of a file of ours, or undefined when it is missing, a link or not ours. */
function readEnd(path: string, size: number, bytes: number): Buffer | undefined {
  const len = Math.min(size, bytes);
  return len === 0 ? Buffer.alloc(0) : readOwn(path, len, size - len);
}

/** A log as `tail` sees it: the last lines, and where the complete ones end (for following on). */
export interface Tail extends Lines {
  /** the byte offset in the log right after its last complete line: where following goes on */
  readonly offset: number;
  /** the bytes before `offset` (at most ANCHOR_BYTES, from .prev when the log holds fewer) */
  readonly anchor: Buffer;
  /** the identity of .prev as read, so a follower can tell a later cap */
  readonly prevKey: string;
}

export type ReadResult = { readonly ok: true; readonly tail: Tail } | { readonly ok: false; readonly why: 'missing' | 'refused' };

const prevPath = (log: string) => `${log}.prev`;
const fileKey = (path: string) => {
  const st = statOwn(path);
  return st ? `${st.ino}:${st.mtimeMs}:${st.size}` : '';
};

/** Why a log cannot be read: not there at all, or something that is not a plain file of ours (a link) in its place. */
function refusal(path: string): 'missing' | 'refused' {
  try {
    lstatSync(path);
    return 'refused';
  } catch {
    return 'missing';
  }
}

/**
 * The last `n` lines of a log (its complete lines; the line being written is in `partial`),
 * from `<log>.prev` too when the log holds fewer. Reads a window from the end that grows until
 * it holds enough lines, so a 10 MB log costs a few kB.
 */
export function readTail(log: string, n: number): ReadResult {
  const st = statOwn(log);
  if (!st) return { ok: false, why: refusal(log) };
  const prevKey = fileKey(prevPath(log));
  let window = Math.min(st.size, Math.max(TAIL_WINDOW, n * 256));
  let cur: Buffer | undefined;
  for (;;) {
    cur = readEnd(log, st.size, window);
    if (!cur) return { ok: false, why: refusal(log) };
    if (window >= st.size || countLines(cur) > n) break;
    window = Math.min(st.size, window * 4);
  }
  const fromStart = cur.length >= st.size;
  const lastNl = cur.lastIndexOf(NL);
  const offset = st.size - cur.length + (lastNl + 1);
  let prev: Buffer | undefined;
  const complete = (lastNl < 0 ? 0 : countLines(cur.subarray(0, lastNl + 1))) - (fromStart ? 0 : 1);
  if (fromStart && (complete < n || offset < ANCHOR_BYTES)) {
    // the log holds fewer lines than asked for: the older ones are in .prev, if it was capped
    const pst = statOwn(prevPath(log));
    if (pst && pst.size > 0) {
      let pw = Math.min(pst.size, Math.max(TAIL_WINDOW, (n - complete) * 256));
      for (;;) {
        prev = readEnd(prevPath(log), pst.size, pw);
        if (!prev || pw >= pst.size || countLines(prev) > n - complete) break;
        pw = Math.min(pst.size, pw * 4);
      }
    }
  }
  const lines = splitLog(cur, fromStart, prev);
  const upTo = Buffer.concat([prev ?? Buffer.alloc(0), cur.subarray(0, lastNl + 1)]);
  return { ok: true, tail: { ...lines, offset, anchor: upTo.subarray(Math.max(0, upTo.length - ANCHOR_BYTES)), prevKey } };
}

/** What one look at a followed log found. */
export interface Step {
  readonly lines: readonly string[];
  /** the log was capped and where to go on from was not found in .prev: some output may be missing */
  readonly gap: boolean;
  /** the log is gone, or something that is not a plain file of ours is in its place */
  readonly lost: 'missing' | 'refused' | undefined;
}

/**
 * Follows a log from where a Tail left off: each `step()` returns the complete lines written
 * since. A cap (a new `.prev`, or the log shorter than what was read) is followed across: the
 * last bytes printed (the anchor) are looked for in the new .prev, and what comes after them
 * there is printed before the log's new content, so no line is lost or repeated unless the
 * follower fell more than half a log_max behind (then `gap`).
 */
export class LogFollower {
  private offset: number;
  private anchor: Buffer;
  private prevKey: string;
  /** the end of .prev after a cap, not yet ended by a newline: the start of the log's first line */
  private carry: Buffer = Buffer.alloc(0);

  constructor(
    readonly log: string,
    from: Tail,
  ) {
    this.offset = from.offset;
    this.anchor = Buffer.from(from.anchor);
    this.prevKey = from.prevKey;
  }

  step(): Step {
    const lines: string[] = [];
    let gap = false;
    for (;;) {
      const st = statOwn(this.log);
      if (!st) return { lines, gap, lost: refusal(this.log) };
      const prevKey = fileKey(prevPath(this.log));
      // a cap writes a new .prev; a .prev removed (or the log cut short with none) has nothing to replay
      const newPrev = prevKey !== '' && prevKey !== this.prevKey;
      this.prevKey = prevKey;
      if (newPrev) {
        gap = this.afterCap(lines) || gap;
        continue;
      }
      if (st.size < this.offset) {
        this.offset = 0;
        this.carry = Buffer.alloc(0);
        continue;
      }
      const len = Math.min(st.size - this.offset, FOLLOW_CHUNK);
      const data = len > 0 ? readOwn(this.log, len, this.offset) : Buffer.alloc(0);
      if (!data) return { lines, gap, lost: refusal(this.log) };
      lines.push(...this.take(Buffer.concat([this.carry, data])));
      if (data.length < FOLLOW_CHUNK) return { lines, gap, lost: undefined };
    }
  }

  /** After the run ended: the line it left unfinished, if any (call after a last step()). */
  rest(): string | undefined {
    const st = statOwn(this.log);
    const data = st && st.size > this.offset ? (readOwn(this.log, Math.min(st.size - this.offset, FOLLOW_CHUNK), this.offset) ?? Buffer.alloc(0)) : Buffer.alloc(0);
    const all = Buffer.concat([this.carry, data]);
    return all.length > 0 ? all.toString('utf8') : undefined;
  }

  /** The complete lines of `buf` (the carry, then new bytes of the log at `offset`); moves past them. */
  private take(buf: Buffer): string[] {
    const nl = buf.lastIndexOf(NL);
    if (nl < 0) return [];
    if (nl + 1 <= this.carry.length) {
      this.carry = Buffer.from(this.carry.subarray(nl + 1));
    } else {
      this.offset += nl + 1 - this.carry.length;
      this.carry = Buffer.alloc(0);
    }
    return this.printed(buf.subarray(0, nl + 1));
  }

  /** Complete lines about to be printed: the anchor moves to their end. */
  private printed(done: Buffer): string[] {
    const a = Buffer.concat([this.anchor, done]);
    this.anchor = Buffer.from(a.subarray(Math.max(0, a.length - ANCHOR_BYTES)));
    return [...splitLog(done, true).lines];
  }

  /** The log was capped: print what .prev holds after the anchor, go on from the log's start. Returns whether the anchor was lost. */
  private afterCap(lines: string[]): boolean {
    const pst = statOwn(prevPath(this.log));
    const prev = pst && pst.size > 0 ? (readOwn(prevPath(this.log), pst.size, 0) ?? Buffer.alloc(0)) : Buffer.alloc(0);
    const at = this.anchor.length > 0 ? prev.lastIndexOf(this.anchor) : -1;
    let rest: Buffer;
    let gap = false;
    if (at >= 0) rest = prev.subarray(at + this.anchor.length);
    else {
      // fell behind by more than .prev holds (or nothing was printed yet): go on from its first whole line
      const nl = prev.indexOf(NL);
      rest = nl < 0 ? Buffer.alloc(0) : prev.subarray(nl + 1);
      gap = this.anchor.length > 0 && prev.length > 0;
    }
    const nl = rest.lastIndexOf(NL);
    lines.push(...this.printed(rest.subarray(0, nl + 1)));
    this.carry = Buffer.from(rest.subarray(nl + 1));
    this.offset = 0;
    return gap;
  }
}

/** bell's or another file's time stamp, to tell whether it changed since the last look */
const mtime = (path: string) => {
  try {
    return lstatSync(path).mtimeMs;
  } catch {
    return 0;
  }
};

export interface FollowDeps {
  readonly state: State;
  readonly config: LoadedConfig;
  readonly now: () => number;
  /** @default WAIT_POLL_MS */
  readonly pollMs?: number;
}

export type FollowEnd =
  | { readonly how: 'ended'; readonly run: RunRow; readonly status: number }
  | { readonly how: 'signal'; readonly signal: 'SIGINT' | 'SIGTERM' }
  | { readonly how: 'lost'; readonly why: 'missing' | 'refused' };

/** A run being followed: its id and the follower of its log. */
export interface Followed {
  readonly runId: string;
  readonly follower: LogFollower;
}

/**
 * The detached run of `name` that started next after `after`, if one has: what `logs -f --next`
 * goes on with. Foreground runs have no log and are passed over.
 */
export function nextRun(state: State, name: string, after: Pick<RunRow, 'id' | 'started_at'>): RunRow | undefined {
  return state.db
    .prepare("SELECT * FROM runs WHERE name = ? AND mode = 'detached' AND (started_at > ? OR (started_at = ? AND id > ?)) ORDER BY started_at, id LIMIT 1")
    .get(name, after.started_at, after.started_at, after.id) as RunRow | undefined;
}

export interface FollowOut {
  lines(l: readonly string[]): void;
  gap(): void;
  /**
   * With --next: called once the followed run has ended, and at every look after, until it
   * gives the run to go on with (following then ends only by a signal). Without it, following
   * ends with the run's status.
   */
  next?: (ended: RunRow) => Followed | undefined;
}

/**
 * Print the log's new lines as they are written until the run ends (then its status, as
 * `wait` gives it), a SIGINT or SIGTERM, or the log is gone or replaced by something not ours.
 * Sleeps on the slot bell (the run's end rings it) and a watch on the log (new output wakes
 * it), with WAIT_POLL_MS as the floor; reconciles when the bell rang or the poll ran out, not
 * on every write.
 */
export async function followLog(deps: FollowDeps, first: Followed, out: FollowOut): Promise<FollowEnd> {
  const { state } = deps;
  const poll = deps.pollMs ?? WAIT_POLL_MS;
  const bellFile = bellPath(state);
  const bell = new BellListener(bellFile);
  let logWatch: FSWatcher | undefined;
  const watchLog = (path: string) => {
    logWatch?.close();
    try {
      logWatch = watch(path, { persistent: false }, () => bell.poke());
      logWatch.on('error', () => logWatch?.close());
    } catch {
      logWatch = undefined; // no watching here: the poll
    }
  };
  let current = first;
  /** the followed run, once it has ended and --next waits for the name's next run */
  let ended: RunRow | undefined;
  watchLog(current.follower.log);
  let signal: 'SIGINT' | 'SIGTERM' | undefined;
  const onInt = () => {
    signal = 'SIGINT';
    bell.poke();
  };
  const onTerm = () => {
    signal = 'SIGTERM';
    bell.poke();
  };
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  let lastBell = Number.NaN;
  let lastReconcile = Number.NEGATIVE_INFINITY;
  try {
    for (;;) {
      if (signal) return { how: 'signal', signal };
      const bellNow = mtime(bellFile);
      if (bellNow !== lastBell || deps.now() - lastReconcile >= poll) {
        lastBell = bellNow;
        lastReconcile = deps.now();
        try {
          reconcileAll(state, deps.config, lastReconcile, 'logs');
        } catch (err) {
          if (!(err instanceof StateError && err.reason === 'state_locked')) throw err;
        }
      }
      if (!ended) {
        const row = getRun(state, current.runId);
        if (!row) throw new Error('the run being followed left the registry');
        // look at the log after the run's row: output written before it ended is all there
        const s = current.follower.step();
        if (s.gap) out.gap();
        if (s.lines.length) out.lines(s.lines);
        if (s.lost) return { how: 'lost', why: s.lost };
        if (row.ended_at !== null) {
          const rest = current.follower.rest();
          if (rest !== undefined) out.lines([rest]);
          if (!out.next) return { how: 'ended', run: row, status: runStatus(row) };
          ended = row;
        }
      }
      if (ended && out.next) {
        const nx = out.next(ended);
        if (nx) {
          current = nx;
          ended = undefined;
          watchLog(current.follower.log);
          continue;
        }
      }
      await bell.wait(poll);
    }
  } finally {
    process.removeListener('SIGINT', onInt);
    process.removeListener('SIGTERM', onTerm);
    logWatch?.close();
    bell.close();
  }
}
