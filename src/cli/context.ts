/** The real context a command runs in (core/ctx.ts says what it holds). */
import { ignoredWarning } from '../core/config/files.js';
import { loadConfig } from '../core/config/load.js';
import type { LoadedConfig } from '../core/config/types.js';
import { makeUi, outputWidth } from './output.js';
import { type Ctx, type GlobalOptions, NO_PROGRESS, type Stream } from '../core/ctx.js';
import { emit } from './command.js';
import { printable } from '../core/text.js';
import { showProgress, TtyProgress } from './progress.js';
import { listProcesses, type ProcInfo } from '../core/proc.js';
import { type Sampler, systemSampler } from '../core/resources.js';
import { resolveStateDir, State } from '../core/state.js';
import { hookSink } from '../core/hooks/sink.js';

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
  const stdout = init.stdout ?? process.stdout;
  const stderr = init.stderr ?? process.stderr;
  // status lines on the terminal now: erased before anything else is printed
  const lines = new Set<TtyProgress>();
  const clearLines = () => {
    for (const l of lines) l.clear();
  };
  const now = init.now ?? Date.now;
  const width = (s: Stream) => outputWidth({ wide: Boolean(init.globals.wide), isTTY: Boolean(s.isTTY), columns: s.columns });
  const ctx: Ctx = {
    globals: init.globals,
    env,
    cwd,
    now,
    sleep: init.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms))),
    stdout,
    stderr,
    ui: makeUi(init.colorOut, init.chalk, width(stdout)),
    uiErr: makeUi(init.colorErr, init.chalk, width(stderr)),
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
      if (!state) {
        state = State.open(ctx.stateDir().dir);
        // [[hooks]]: the events each write commits, fired after the command's turn, detached
        state.onEvent = hookSink({
          hooks: () => ctx.config().config.hooks,
          stateDir: () => ctx.stateDir().dir,
          env,
          // the runner's launcher loads only when a hook fires
          launch: (dir, hooks, firings, dropped) => void import('../core/hooks/fire.js').then((m) => m.launchRunner(dir, hooks, firings, dropped, env)).catch(() => undefined),
        });
      }
      return state;
    },
    progress() {
      if (!showProgress({ isTTY: Boolean(stderr.isTTY), quiet: init.globals.quiet, json: init.globals.json, term: env.TERM })) return NO_PROGRESS;
      const line = new TtyProgress(stderr, { now, columns: () => stderr.columns });
      lines.add(line);
      return {
        update: (what, tail) => line.update(what, tail),
        done: () => {
          line.done();
          lines.delete(line);
        },
      };
    },
    note(line) {
      clearLines();
      if (!init.globals.quiet) stderr.write(`${printable(line)}\n`);
    },
    print(data, render) {
      clearLines();
      emit(ctx, data, render);
    },
    close() {
      for (const l of lines) l.done();
      lines.clear();
      state?.close();
      state = undefined;
    },
  };
  return ctx;
}
