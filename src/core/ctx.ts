/**
 * What a command gets from the face and gives back: the context it runs in (everything that
 * touches the world), the Ui it renders with, and its Outcome. The CLI (src/cli/) builds the
 * real ones; tests build fakes. Commands never reach for process.* or globals directly.
 */
import type { ChalkInstance } from 'chalk';
import type { FlagValues, LoadedConfig } from './config/types.js';
import type { ProcInfo } from './proc.js';
import type { Sampler } from './resources.js';
import type { State } from './state.js';

export interface Stream {
  write(s: string): unknown;
  readonly isTTY?: boolean;
  /** the terminal's width, when the stream is one */
  readonly columns?: number;
}

export interface GlobalOptions {
  readonly json: boolean;
  readonly quiet: boolean;
  readonly stateDir?: string | undefined;
  readonly config?: string | undefined;
  readonly color?: boolean | undefined;
  /** --wide: views as wide as their text, whatever the terminal */
  readonly wide?: boolean | undefined;
}

export interface Ctx {
  readonly globals: GlobalOptions;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  readonly stdout: Stream;
  readonly stderr: Stream;
  /** formatting for stdout */
  readonly ui: Ui;
  /** formatting for stderr */
  readonly uiErr: Ui;
  readonly sampler: Sampler;
  readonly listProcesses: () => Promise<ProcInfo[]>;
  /**
   * The effective configuration, loaded once (flag values from the command join the precedence).
   * Default config files that were ignored as untrusted are warned about on stderr then.
   */
  config(flags?: FlagValues): LoadedConfig;
  /** The state database, opened once and closed when the command ends. */
  state(): State;
  stateDir(): { dir: string; source: string };
  /** A diagnostic line on stderr (suppressed by --quiet). */
  note(line: string): void;
  /**
   * A status line for a wait that may last (src/cli/progress.ts draws it): a line on a
   * terminal's stderr, or nothing at all (piped, --quiet, --json, TERM=dumb). Call it when a
   * wait starts, `update` it as what is waited for changes, `done` it when the wait ends.
   */
  progress(): Progress;
  /** Print one result the way the globals ask (a JSON document, or the view), as a command's outcome is printed; for commands that print as they go (--watch). */
  print<T>(data: T, render: (data: T, ui: Ui) => string): void;
  /** Release what the context holds (the db). */
  close(): void;
}

/**
 * One wait's status line. Core loops report through it without knowing whether anyone sees it.
 * The line reads `what` then `tail(elapsed)`: `what` is cut with `…` to the terminal's width,
 * the tail (how long so far; by default `, 12s`) is kept whole and redrawn as time passes.
 */
export interface Progress {
  /** What is waited for now, e.g. `waiting for a slot in group claude: 3rd in queue, 2 of 2 running`. */
  update(what: string, tail?: (elapsedMs: number) => string): void;
  /** The wait is over: the line is erased and nothing more is drawn. Safe to call twice. */
  done(): void;
}

/** A Progress that shows nothing: piped output, --quiet, --json, tests. */
export const NO_PROGRESS: Progress = {
  update() {},
  done() {},
};

/**
 * Text reaches people only through a Ui, and the Ui escapes it (core/text.ts `printable`):
 * styles escape what they paint, every table cell and pair is escaped, and `safe` escapes a
 * whole rendered view but its newlines. What the Ui painted itself (styles, tables) is kept as
 * painted: its escape codes are ours and its text was escaped when painted. Anything else
 * that carries an escape code is shown escaped, even text a render built from painted pieces
 * (a visible `\x1b[31m` is a cosmetic bug; a raw one from another process is not).
 */
/**
 * The columns of a table that may give way, by header, and how (Ui.table): `wrap` breaks cells
 * between words, `cut` ends them with `…`, `cut-last` (names) is cut only once the others are
 * down to their headers' width, and `drop` columns (in the order named) are left out when the
 * table cannot fit with them.
 */
export type TableFit = Readonly<Record<string, 'wrap' | 'cut' | 'cut-last' | 'drop'>>;

export interface Ui {
  readonly color: boolean;
  /** chalk, or the plain stand-in: every style escapes its text before painting it */
  readonly c: ChalkInstance;
  /** Columns views are fitted to: the terminal's, 80 when unknown (piped), Infinity under --wide. Colour codes take none. */
  readonly width: number;
  /**
   * Render rows as a table, each cell escaped; plain borders and no escape codes when colour is
   * off. A table wider than `width` narrows the columns named in `fit` (TableFit), the widest
   * first, down to its header's width. Other columns (ids, numbers, times) keep their width,
   * so a table of only those can still be wider.
   */
  table(head: readonly string[], rows: ReadonlyArray<readonly (string | number)[]>, fit?: TableFit): string;
  /** Two-column key/value block, each side escaped; a long value wraps at `width`, under itself. */
  pairs(rows: ReadonlyArray<readonly [string, string]>): string;
  /** A free-text line, escaped, wrapped between words at `width`; lines after the first indented by `indent` spaces. */
  wrap(text: string, indent?: number): string;
  /** A rendered view, safe for a terminal: control characters escaped except its newlines and what this Ui painted. */
  safe(text: string): string;
}

/** What a command returns: data for JSON and the human view, and how to exit. */
export interface Outcome<T> {
  /** The result. Omitted when the command already printed everything (e.g. --watch). */
  readonly data?: T;
  /** Exit code; 0 when omitted. */
  readonly exitCode?: number;
  /** A one-line explanation for stderr when exitCode is not 0 (the JSON carries it as data). */
  readonly message?: string;
  /** Print the human view even under --quiet (e.g. a completion script). */
  readonly alwaysPrint?: boolean;
}
