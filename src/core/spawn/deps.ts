/**
 * What a spawn is given: the request (what to start, and on which terms) and the deps that
 * touch the world, built from a command's context by `spawnDeps` (spawn and dlq retry).
 */
import type { Forker } from './forker.js';
import type { LoadedConfig } from '../config/types.js';
import type { Ctx, Progress } from '../ctx.js';
import { measure, throttleDisabled } from '../measure.js';
import type { ProcInfo } from '../proc.js';
import { pruneHistory } from '../runs/files.js';
import type { State } from '../state.js';
import type { Limits } from './launch.js';

export interface SpawnRequest {
  readonly name: string;
  /** @default "default" */
  readonly group: string;
  /** 1 highest .. 3 normal. @default 3 */
  readonly priority: number;
  readonly max?: number | undefined;
  readonly requires: readonly string[];
  readonly ifNotRunning: boolean;
  readonly detach: boolean;
  /** a job of `spawn --each`: recorded as mode `batch`; its quick failures are not a spawn loop (the host breaker) */
  readonly batch?: boolean | undefined;
  /** wait for admission up to this long; undefined = refuse at once */
  readonly waitMs?: number | undefined;
  readonly timeoutMs?: number | undefined;
  readonly killGraceMs: number;
  readonly limits: Limits;
  readonly command: readonly string[];
  readonly cwd: string;
  /** ports to lease from the pool for this run, released when it ends */
  readonly ports?: number | undefined;
  /** an environment whose ports the run uses (it must exist) */
  readonly env?: string | undefined;
  /** `-d --restart`: its supervisor starts it again when it ends (core/spawn/restart.ts) */
  readonly restart?: RestartTerms | undefined;
}

/** A run's restart policy and its place in the chain of restarts. */
export interface RestartTerms {
  readonly policy: 'on-failure' | 'always';
  /** --retries: restarts after failures in a row; null: until the breaker opens */
  readonly retries: number | null;
  /** 0 for the first run, one more per restart */
  readonly attempt: number;
  /** failed runs in a row before this one */
  readonly failures: number;
  /** the ended run this one restarts: admitted only while that run's restart still waits */
  readonly from?: string | undefined;
}

export interface SpawnDeps {
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  readonly env: NodeJS.ProcessEnv;
  readonly config: LoadedConfig;
  readonly state: State;
  /** the throttle's say in the cap: its level and the agents that level allows */
  readonly throttle: () => Promise<ThrottleCap>;
  readonly listProcesses: () => Promise<ProcInfo[]>;
  /** argv that runs agentctl, for the detached timeout watchdog */
  readonly selfArgv: readonly string[];
  /** the --config the command was given, for the agentctl commands a supervisor runs */
  readonly configPath?: string | undefined;
  /** the folder the config was looked up from (the spawner's): the supervisor's agentctl calls look it up from there too */
  readonly configHome?: string | undefined;
  /**
   * Attempts within this long of this process's last reconcile skip theirs (`up`: one burst of
   * attempts, after its own reconcile). A skipped reconcile can only leave an ended run counted,
   * a refusal the next ask corrects, never an admission past a cap: every admitted run is a row
   * either way. Unset (every other caller): each attempt reconciles, as a waiter woken by a
   * detached run's exit needs.
   */
  readonly reconcileReuseMs?: number | undefined;
  /** a status line for --wait (a terminal's, or none): wait.ts says what holds the spawn */
  readonly progress?: () => Progress;
  /** a warning for the operator (stderr): a fleet admitted without PostgreSQL's answer */
  readonly onWarning?: (line: string) => void;
  /** called once the child runs (foreground) or is launched (detached) */
  readonly onStart?: (info: { runId: string; pid: number }) => void;
  /** the command spawning, as its admission events name it (default spawn) */
  readonly command?: string | undefined;
  /** forks detached runs' supervisors for a command that starts several (`up`; forker.ts) */
  readonly forker?: Forker | undefined;
}

/** What admission needs from the throttle reading. `maxAgents` is Infinity when throttling is off. */
export interface ThrottleCap {
  readonly level: number;
  readonly maxAgents: number;
}

/** A process table this fresh is good for both the throttle reading and the cap count. */
const PROCESS_TABLE_REUSE_MS = 500;

/** What spawnRun needs from a command's context; `command` names the command in events. */
export function spawnDeps(ctx: Ctx, loaded: LoadedConfig, command: string, onStart?: SpawnDeps['onStart']): SpawnDeps {
  const state = ctx.state();
  // the throttle reading and the cap both need the process table: read it once per round
  let table: { at: number; list: Promise<ProcInfo[]> } | undefined;
  const listProcesses = () => {
    if (!table || ctx.now() - table.at > PROCESS_TABLE_REUSE_MS) table = { at: ctx.now(), list: ctx.listProcesses() };
    return table.list;
  };
  return {
    command,
    now: ctx.now,
    sleep: ctx.sleep,
    env: ctx.env,
    config: loaded,
    state,
    // with throttling off the reading decides nothing: skip it (and its CPU window, up to
    // throttle.cpu_window when no recent sample is stored), but not the pruning it does
    throttle: async () => {
      if (throttleDisabled(ctx.env)) {
        pruneHistory(state, loaded.config.state, ctx.now());
        return { level: 0, maxAgents: Number.POSITIVE_INFINITY };
      }
      const r = await measure({ now: ctx.now, sleep: ctx.sleep, env: ctx.env, sampler: ctx.sampler, listProcesses }, loaded.config, state, command);
      return { level: r.throttle_level, maxAgents: r.throttle_params.max_agents };
    },
    listProcesses,
    selfArgv: [process.execPath, process.argv[1]!],
    configPath: ctx.globals.config,
    configHome: ctx.cwd,
    progress: () => ctx.progress(),
    onWarning: (line) => ctx.note(`agentctl: warning: ${line}`),
    ...(onStart ? { onStart } : {}),
  };
}
