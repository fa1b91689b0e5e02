/**
 * Output for people and scripts. Colour is decided once per stream: --color/--no-color, then
 * NO_COLOR, then FORCE_COLOR, then whether the stream is a TTY. chalk 5 does not read NO_COLOR
 * itself, and cli-table3 colours its borders unless told not to, so both get told.
 */
import { Chalk, type ChalkInstance } from 'chalk';
import { createRequire } from 'node:module';
import type { Ui } from '../core/ctx.js';
import { printable } from '../core/text.js';

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

type TableCtor = new (opts: Record<string, unknown>) => { push(...rows: unknown[]): void; toString(): string };
let TableClass: TableCtor | undefined;

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

/** A Ui for one stream; pass chalk (from loadChalk) when colour is on. */
export function makeUi(color: boolean, chalk?: ChalkInstance): Ui {
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
    table(head, rows) {
      // cli-table3 is CommonJS and only needed when a person reads a table: load it then
      TableClass ??= createRequire(import.meta.url)('cli-table3') as TableCtor;
      const t = new TableClass({
        head: head.map((h) => c.bold(h)),
        style: color ? { head: [], border: ['grey'] } : { head: [], border: [] },
        // no rule between rows: compact, and greps as one line per row
        chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
      });
      t.push(...rows.map((r) => r.map((x) => (typeof x === 'number' ? String(x) : cell(x)))));
      return remember(t.toString());
    },
    pairs(rows) {
      const keys = rows.map(([k]) => cell(k));
      const w = Math.max(0, ...keys.map((k) => stripAnsi(k).length));
      return remember(rows.map(([, v], i) => `${c.dim(keys[i]!.padEnd(w + keys[i]!.length - stripAnsi(keys[i]!).length))}  ${cell(v)}`).join('\n'));
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
