/**
 * The status line on a terminal (core/ctx.ts `Progress`): one line on stderr, shown only once
 * a wait has lasted SHOW_AFTER_MS (a quick command never flashes one), redrawn in place
 * (`\r`, erase line) at most every REDRAW_MS and only when its text changed, never wider than
 * the terminal, escaped like all other text, and erased before anything else is printed and
 * when the wait ends. No cursor hiding, no spinner: nothing to restore if the process dies.
 * Written here rather than taken from a spinner package: it is this much code, and it loads
 * with the context, so it must cost start-up nothing (docs/architecture.md, "Start-up").
 */
import type { Progress, Stream } from '../core/ctx.js';
import { elapsedTail } from '../core/progress.js';
import { printable } from '../core/text.js';

/** A wait shorter than this shows no line. */
export const SHOW_AFTER_MS = 400;
/** The line is redrawn at most this often (and the clock in it moves once a second). */
export const REDRAW_MS = 250;

/** Back to the line's start, and erase it. */
export const ERASE = '\r\u001b[2K';

export interface ShowInputs {
  readonly isTTY: boolean;
  readonly quiet: boolean;
  readonly json: boolean;
  readonly term: string | undefined;
}

/** Does a wait get a status line? Only on a terminal's stderr that can redraw a line, and never under --quiet or --json. */
export function showProgress({ isTTY, quiet, json, term }: ShowInputs): boolean {
  return isTTY && !quiet && !json && term !== 'dumb';
}

/**
 * The line as drawn: escaped, within `columns - 1` (the last column would wrap on some
 * terminals), `what` cut with `…` so the tail stays whole; a tail too wide for the terminal
 * is cut with the rest.
 */
export function fitLine(what: string, tail: string, columns: number): string {
  const room = Math.max(1, columns - 1);
  const t = printable(tail);
  if (t.length >= room - 1) return printable(what + tail, room);
  return printable(what, room - t.length) + t;
}

export interface TtyProgressOptions {
  readonly now: () => number;
  /** the terminal's columns now (it may be resized); 80 when unknown or 0 (a pseudo-terminal never sized) */
  readonly columns: () => number | undefined;
  /** starts the redraw timer; returns how to stop it. @default an unref'd setInterval */
  readonly every?: (ms: number, fn: () => void) => () => void;
}

const unrefInterval = (ms: number, fn: () => void): (() => void) => {
  const t = setInterval(fn, ms);
  t.unref(); // a status line never keeps the process alive
  return () => clearInterval(t);
};

/** A status line on a terminal stream. */
export class TtyProgress implements Progress {
  private readonly started: number;
  private what: string | undefined;
  private tail: (ms: number) => string = elapsedTail;
  /** what is on the terminal now ('' when nothing) */
  private drawn = '';
  private drawnAt = -Infinity;
  private stopTimer: (() => void) | undefined;
  private finished = false;

  constructor(
    private readonly stream: Stream,
    private readonly opts: TtyProgressOptions,
  ) {
    this.started = opts.now();
  }

  update(what: string, tail?: (elapsedMs: number) => string): void {
    if (this.finished) return;
    this.what = what;
    this.tail = tail ?? elapsedTail;
    this.stopTimer ??= (this.opts.every ?? unrefInterval)(REDRAW_MS, () => this.tick());
    // a loop that never yields (env-gc's) is drawn from here, or never
    this.tick();
  }

  /** Draw the line if it is due: the wait has lasted, the last draw is old enough, and the text changed. */
  tick(): void {
    if (this.finished || this.what === undefined) return;
    const now = this.opts.now();
    const elapsed = now - this.started;
    if (elapsed < SHOW_AFTER_MS || now - this.drawnAt < REDRAW_MS) return;
    const cols = this.opts.columns();
    const line = fitLine(this.what, this.tail(elapsed), cols !== undefined && cols > 0 ? cols : 80);
    if (line === this.drawn) return;
    this.stream.write(`${ERASE}${line}`);
    this.drawn = line;
    this.drawnAt = now;
  }

  /** Erase the line for other output; the next tick draws it again. */
  clear(): void {
    if (this.drawn === '') return;
    this.stream.write(ERASE);
    this.drawn = '';
    this.drawnAt = -Infinity;
  }

  done(): void {
    if (this.finished) return;
    this.clear();
    this.finished = true;
    this.stopTimer?.();
    this.stopTimer = undefined;
  }
}
