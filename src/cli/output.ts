/**
 * Output for people and scripts. Colour is decided once per stream: --color/--no-color, then
 * NO_COLOR, then FORCE_COLOR, then whether the stream is a TTY. chalk 5 does not read NO_COLOR
 * itself, so it gets told; table borders are grey only when colour is on (table.ts).
 */
import { Chalk, type ChalkInstance } from 'chalk';
import type { Ui } from '../core/ctx.js';
import { printable } from '../core/text.js';
import { drawTable } from './table.js';

export interface ColorInputs {
  /** true for --color, false for --no-color, undefined when neither was given */
  readonly flag: boolean | undefined;
  readonly env: NodeJS.ProcessEnv;
  readonly isTTY: boolean;
}

/** Should this stream get colour? */
export function decideColor({ flag, env, isTTY }: ColorInputs): boolean {
  if (flag !== undefined) return flag;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.FORCE_COLOR !== undefined) return env.FORCE_COLOR !== '0' && env.FORCE_COLOR !== 'false';
  if (env.TERM === 'dumb') return false;
  return isTTY;
}

/**
 * A stand-in for chalk when colour is off: every style is the identity, chained or called.
 * Piped and --json runs (the common case in scripts) then never load chalk at all.
 */
const plain: ChalkInstance = new Proxy((() => {}) as unknown as ChalkInstance, {
  get: (_t, prop) => (prop === 'level' ? 0 : plain),
  apply: (_t, _this, args: unknown[]) => args.map((a) => printable(String(a))).join(' '),
});

/** Painted strings a Ui remembers before it forgets them all (a long --watch must not grow). */
const PAINTED_MAX = 10_000;

/**
 * `text` with control characters escaped, except whole strings from `painted` (kept as they
 * are) and, with `keepNewlines`, line breaks. Only an ESC can start a painted string worth
 * keeping: text without one is escaped in one pass.
 */
function escapeExcept(text: string, painted: ReadonlySet<string>, keepNewlines: boolean): string {
  const esc = (seg: string) =>
    keepNewlines
      ? seg
          .split('\n')
          .map((l) => printable(l))
          .join('\n')
      : printable(seg);
  let out = '';
  let from = 0;
  for (let i = text.indexOf('\u001b'); i >= 0;) {
    let best = '';
    for (const p of painted) if (p.length > best.length && text.startsWith(p, i)) best = p;
    if (!best) {
      i = text.indexOf('\u001b', i + 1);
      continue;
    }
    out += esc(text.slice(from, i)) + best;
    from = i + best.length;
    i = text.indexOf('\u001b', from);
  }
  return out + esc(text.slice(from));
}

/** chalk whose every style escapes its text first and remembers what it painted. */
function escapingChalk(chalk: ChalkInstance, remember: (s: string) => string, escape: (s: string) => string): ChalkInstance {
  // the proxy stands in front of an empty target: chalk memoizes styles as non-configurable
  // properties, which a proxy of chalk itself would have to return unwrapped
  const wrap = (real: object): unknown =>
    new Proxy(() => {}, {
      get(_t, prop) {
        const v: unknown = Reflect.get(real, prop, real);
        return typeof v === 'function' && typeof prop === 'string' ? wrap(v) : v;
      },
      set: (_t, prop, value) => Reflect.set(real, prop, value, real),
      apply(_t, thisArg, args: unknown[]) {
        return remember(
          Reflect.apply(
            real as (...a: unknown[]) => string,
            thisArg,
            args.map((a) => escape(String(a))),
          ),
        );
      },
    });
  return wrap(chalk) as ChalkInstance;
}

/**
 * chalk, for when some stream gets colour. It is bundled and imported plainly: loading it
 * lazily, through the ES module loader, saved a run without colour nothing measurable and cost
 * a run with colour 15 ms (docs/architecture.md, "Start-up").
 */
export function loadChalk(): ChalkInstance {
  return new Chalk({ level: 1 });
}

/** Columns a view is fitted to when the terminal's width is unknown (piped, redirected). */
export const DEFAULT_WIDTH = 80;

export interface WidthInputs {
  /** --wide: lines as long as their text */
  readonly wide: boolean;
  readonly isTTY: boolean;
  /** the terminal's columns, when the stream is one */
  readonly columns: number | undefined;
}

/** How wide a stream's views may be: its terminal's columns, 80 when unknown, no limit under --wide. */
export function outputWidth({ wide, isTTY, columns }: WidthInputs): number {
  if (wide) return Infinity;
  return isTTY && columns !== undefined && columns > 0 ? columns : DEFAULT_WIDTH;
}

// eslint-disable-next-line no-control-regex
const ANSI_AT = /\u001b\[[0-9;]*[A-Za-z]/y;

/** The pieces of painted text: escape codes (no width) and code points (one column each). */
function pieces(s: string): Array<readonly [text: string, width: 0 | 1]> {
  const out: Array<readonly [string, 0 | 1]> = [];
  for (let i = 0; i < s.length;) {
    ANSI_AT.lastIndex = i;
    const m = ANSI_AT.exec(s);
    if (m) {
      out.push([m[0], 0]);
      i += m[0].length;
      continue;
    }
    const size = s.codePointAt(i)! > 0xffff ? 2 : 1;
    out.push([s.slice(i, i + size), 1]);
    i += size;
  }
  return out;
}

/** Columns a line takes on a terminal: code points, escape codes not counted. */
export function visibleWidth(s: string): number {
  let n = 0;
  for (const _ of stripAnsi(s)) n++;
  return n;
}

const RESET = '\u001b[0m';

/** `s` cut to `width` columns with a final `…`; a colour left open is closed. */
function cut(s: string, width: number): string {
  if (visibleWidth(s) <= width) return s;
  let out = '';
  let used = 0;
  let painted = false;
  for (const [text, w] of pieces(s)) {
    if (w === 0) painted = true;
    else if (used + 1 > width - 1) break;
    out += text;
    used += w;
  }
  return `${out}…${painted ? RESET : ''}`;
}

/**
 * `s` broken into lines between words: the first at most `first` columns, the others at most
 * `rest`. A word longer than a line is broken where the line ends.
 */
function wrapLines(s: string, first: number, rest: number = first): string[] {
  const lines: string[] = [];
  // the first line's own indent stays
  let line = /^ */.exec(s)![0];
  let used = line.length;
  let words = 0; // on this line
  const room = () => Math.max(1, lines.length ? rest : first);
  const flush = () => {
    lines.push(line);
    line = '';
    used = 0;
    words = 0;
  };
  for (const word of s.slice(used).split(' ')) {
    const w = visibleWidth(word);
    if (words > 0 && used + 1 + w <= room()) {
      line += ` ${word}`;
      used += 1 + w;
      continue;
    }
    if (words > 0 && w > Math.max(1, rest) && used + 2 <= room()) {
      // too long for any line: it starts here and is broken where lines end
      line += ' ';
      used += 1;
    } else if (words > 0) flush();
    words = 1;
    if (used + w <= room()) {
      line += word;
      used += w;
      continue;
    }
    for (const [text, pw] of pieces(word)) {
      if (used + pw > room() && used > 0) flush();
      line += text;
      used += pw;
    }
    words = 1; // the word's last piece
  }
  lines.push(line);
  return lines;
}

/** Columns a free-text column should keep before a table leaves out a column it may drop. */
const READABLE = 20;

/** A Ui for one stream; pass chalk (from loadChalk) when colour is on, and the width to fit (outputWidth). */
export function makeUi(color: boolean, chalk?: ChalkInstance, width: number = Infinity): Ui {
  // what this Ui painted with escape codes: kept as it is wherever it turns up again
  const painted = new Set<string>();
  const remember = (s: string) => {
    if (!s.includes('\u001b')) return s;
    if (painted.size >= PAINTED_MAX) painted.clear();
    painted.add(s);
    return s;
  };
  const cell = (s: string) => (painted.has(s) ? s : escapeExcept(s, painted, false));
  const c = color && chalk ? escapingChalk(chalk, remember, cell) : plain;
  return {
    color: c !== plain,
    c,
    width,
    table(head, rows, fit = {}) {
      const show = (x: string | number | undefined) => (x === undefined ? '' : typeof x === 'number' ? String(x) : cell(x));
      let cols = head.map((h, i) => ({ h, i, how: fit[h], width: Math.max(visibleWidth(h), ...rows.map((r) => visibleWidth(show(r[i])))) }));
      // each column takes its width, a space either side and one border; one more border closes the row
      const total = (widthOf: (c: (typeof cols)[number]) => number) => cols.reduce((a, c) => a + widthOf(c) + 3, 1);
      // how narrow a column that gives way may get: its header's width, never below 3
      const floor = (c: (typeof cols)[number]) => Math.max(3, visibleWidth(c.h));
      // 'drop' columns leave, in the order fit names them, while the columns that give way would
      // get less than READABLE columns each
      for (const [h, how] of Object.entries(fit)) {
        if (how === 'drop' && total((c) => (c.how && c.how !== 'drop' ? Math.min(c.width, Math.max(floor(c), READABLE)) : c.width)) > width) cols = cols.filter((c) => c.h !== h);
      }
      const widths = cols.map((c) => c.width);
      let excess = total((c) => c.width) - width;
      // the widest free-text column gives way, a column at a time, down to its floor; names
      // ('cut-last') only once the others are down to theirs
      for (const tier of [['wrap', 'cut'], ['cut-last']]) {
        while (excess > 0) {
          let widest = -1;
          cols.forEach((c, k) => {
            if (tier.includes(c.how ?? '') && widths[k]! > floor(c) && (widest < 0 || widths[k]! > widths[widest]!)) widest = k;
          });
          if (widest < 0) break; // only fixed columns left: they are never cut
          widths[widest]!--;
          excess--;
        }
      }
      const fitted = (text: string, c: (typeof cols)[number], k: number) => (widths[k] === c.width ? text : c.how === 'wrap' ? wrapLines(text, widths[k]!).join('\n') : cut(text, widths[k]!));
      const body = rows.map((r) => cols.map((c, k) => fitted(show(r[c.i]), c, k)));
      return remember(
        drawTable(
          cols.map((col) => c.bold(col.h)),
          body,
          visibleWidth,
          (s) => c.gray(s),
        ),
      );
    },
    pairs(rows) {
      const keys = rows.map(([k]) => cell(k));
      const w = Math.max(0, ...keys.map((k) => visibleWidth(k)));
      const indent = `\n${' '.repeat(w + 2)}`;
      // a value too long for the line continues under the previous one, not under its key
      const value = (v: string) => wrapLines(cell(v), Math.max(10, width - w - 2)).join(indent);
      return remember(rows.map(([, v], i) => `${c.dim(keys[i]!.padEnd(w + keys[i]!.length - visibleWidth(keys[i]!)))}  ${value(v)}`).join('\n'));
    },
    wrap(text, indent = 0) {
      const pad = ' '.repeat(indent);
      return remember(
        wrapLines(cell(text), width, Math.max(10, width - indent))
          .map((l, i) => (i ? pad + l : l))
          .join('\n'),
      );
    },
    safe(text) {
      return escapeExcept(text, painted, true);
    },
  };
}

/** Strip ANSI escape sequences (for width measuring and tests). */
export function stripAnsi(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\u001b\[[0-9;]*[A-Za-z]/g, '');
}
