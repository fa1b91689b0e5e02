/**
 * The context a command runs in: everything that touches the world. The CLI builds the real
 * one; tests build fakes. Commands never reach for process.* or globals directly.
 */
import { ignoredWarning, loadConfig, type FlagValues, type LoadedConfig } from './config.js';
import { makeUi, type Ui } from './output.js';
import { printable } from './text.js';
import { listProcesses, type ProcInfo } from './proc.js';
import { systemSampler, type Sampler } from './resources.js';
import { resolveStateDir, State } from './state.js';

export interface Stream {
  write(s: string): unknown;
  readonly isTTY?: boolean;
}

export interface GlobalOptions {
  readonly json: boolean;
  readonly quiet: boolean;
  readonly stateDir?: string | undefined;
  readonly config?: string | undefined;
  readonly color?: boolean | undefined;
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
  /** Release what the context holds (the db). */
  close(): void;
}

export interface CtxInit {
  readonly globals: GlobalOptions;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  readonly stdout?: Stream;
  readonly stderr?: Stream;
  readonly colorOut: boolean;
  readonly colorErr: boolean;
  /** chalk, loaded by the caller when either stream gets colour */
  readonly chalk?: import('chalk').ChalkInstance;
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly sampler?: Sampler;
  readonly listProcesses?: () => Promise<ProcInfo[]>;
}

export function createCtx(init: CtxInit): Ctx {
  const env = init.env ?? process.env;
  const cwd = init.cwd ?? process.cwd();
  let loaded: LoadedConfig | undefined;
  let state: State | undefined;
  const stderr = init.stderr ?? process.stderr;
  const ctx: Ctx = {
    globals: init.globals,
    env,
    cwd,
    now: init.now ?? Date.now,
    sleep: init.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms))),
    stdout: init.stdout ?? process.stdout,
    stderr,
    ui: makeUi(init.colorOut, init.chalk),
    uiErr: makeUi(init.colorErr, init.chalk),
    sampler: init.sampler ?? systemSampler,
    listProcesses: init.listProcesses ?? listProcesses,
    config(flags) {
      if (!loaded) {
        loaded = loadConfig({ configPath: init.globals.config, env, cwd, ...(flags ? { flags } : {}) });
        // a config file someone else could have written is not read: say so, once per command
        for (const i of loaded.ignored) ctx.note(ignoredWarning(i));
      }
      return loaded;
    },
    stateDir() {
      return resolveStateDir(init.globals.stateDir, env);
    },
    state() {
      state ??= State.open(ctx.stateDir().dir);
      return state;
    },
    note(line) {
      if (!init.globals.quiet) stderr.write(`${printable(line)}\n`);
    },
    close() {
      state?.close();
      state = undefined;
    },
  };
  return ctx;
}
