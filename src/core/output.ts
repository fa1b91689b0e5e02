/**
 * Output for people and scripts. Colour is decided once per stream: --color/--no-color, then
 * NO_COLOR, then FORCE_COLOR, then whether the stream is a TTY. chalk 5 does not read NO_COLOR
 * itself, and cli-table3 colours its borders unless told not to, so both get told.
 */
import type { ChalkInstance } from 'chalk';
import { createRequire } from 'node:module';
import { importEsm } from './esm.js';

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

export interface Ui {
  readonly color: boolean;
  readonly c: ChalkInstance;
  /** Render rows as a table; plain borders and no escape codes when colour is off. */
  table(head: readonly string[], rows: ReadonlyArray<readonly (string | number)[]>): string;
  /** Two-column key/value block. */
  pairs(rows: ReadonlyArray<readonly [string, string]>): string;
}

type TableCtor = new (opts: Record<string, unknown>) => { push(...rows: unknown[]): void; toString(): string };
let TableClass: TableCtor | undefined;

/**
 * A stand-in for chalk when colour is off: every style is the identity, chained or called.
 * Piped and --json runs (the common case in scripts) then never load chalk at all.
 */
const plain: ChalkInstance = new Proxy((() => {}) as unknown as ChalkInstance, {
  get: (_t, prop) => (prop === 'level' ? 0 : plain),
  apply: (_t, _this, args: unknown[]) => args.map(String).join(' '),
});

/** Load chalk, only when some stream gets colour. */
export async function loadChalk(): Promise<ChalkInstance> {
  const { Chalk } = await importEsm<typeof import('chalk')>('chalk');
  return new Chalk({ level: 1 });
}

/** A Ui for one stream; pass chalk (from loadChalk) when colour is on. */
export function makeUi(color: boolean, chalk?: ChalkInstance): Ui {
  const c = color && chalk ? chalk : plain;
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
      t.push(...rows.map((r) => r.map(String)));
      return t.toString();
    },
    pairs(rows) {
      const w = Math.max(0, ...rows.map(([k]) => k.length));
      return rows.map(([k, v]) => `${c.dim(k.padEnd(w))}  ${v}`).join('\n');
    },
  };
}

/** Strip ANSI escape sequences (for width measuring and tests). */
export function stripAnsi(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\u001b\[[0-9;]*[A-Za-z]/g, '');
}
