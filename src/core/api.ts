/**
 * The throttle API for Node orchestrators: what incident 3 asked for (get metrics, under
 * pressure?, recommended agent count, apply the level's delay, wait for resources), over the
 * same state file the CLI uses, so a library caller and `agentctl` agree on the level.
 */
import { loadConfig } from './config/load.js';
import type { LoadedConfig } from './config/types.js';
import { measure, type MeasureDeps, type ThrottleReport } from './measure.js';
import { listProcesses } from './proc.js';
import { systemSampler } from './resources.js';
import { resolveStateDir, State } from './state.js';
import { MAX_TIMER_MS } from './units.js';

export interface ThrottleOptions {
  /** State folder. @default $AGENTCTL_STATE_DIR, $XDG_STATE_HOME/agentctl, ~/.local/state/agentctl */
  readonly stateDir?: string;
  /** Config file instead of ./agentctl.toml and the user config. */
  readonly configPath?: string;
  /** @default process.env */
  readonly env?: NodeJS.ProcessEnv;
  /** @default process.cwd() */
  readonly cwd?: string;
}

function setup(opts: ThrottleOptions): { config: LoadedConfig; deps: MeasureDeps; dir: string } {
  const env = opts.env ?? process.env;
  const config = loadConfig({ configPath: opts.configPath, env, cwd: opts.cwd ?? process.cwd() });
  const deps: MeasureDeps = {
    now: Date.now,
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    env,
    sampler: systemSampler,
    listProcesses,
  };
  return { config, deps, dir: resolveStateDir(opts.stateDir, env).dir };
}

/** Sample the host and return the throttle report (the same document as `throttle-status --json`). */
export async function getMetrics(opts: ThrottleOptions = {}): Promise<ThrottleReport> {
  const { config, deps, dir } = setup(opts);
  const state = State.open(dir);
  try {
    return await measure(deps, config.config, state, 'library');
  } finally {
    state.close();
  }
}

/** Is the host above level 0 (or above `level`)? */
export async function isUnderPressure(opts: ThrottleOptions & { level?: number } = {}): Promise<boolean> {
  return (await getMetrics(opts)).throttle_level > (opts.level ?? 0);
}

/** How many agents the current level allows. */
export async function recommendedAgentCount(opts: ThrottleOptions = {}): Promise<number> {
  return (await getMetrics(opts)).throttle_params.max_agents;
}

/** Sleep for the current level's delay between work items; returns the delay in ms. */
export async function applyDelay(opts: ThrottleOptions & { report?: ThrottleReport } = {}): Promise<number> {
  const delay = (opts.report ?? (await getMetrics(opts))).throttle_params.delay_ms;
  if (delay > 0) await new Promise((r) => setTimeout(r, delay));
  return delay;
}

export interface WaitResult {
  readonly ok: boolean;
  readonly waitedMs: number;
  readonly report: ThrottleReport;
}

/**
 * Wait until the level is at or below `level`, polling every `pollMs`, for at most `timeoutMs`.
 * Resolves with ok=false on timeout (never throws for that).
 * @default level 1, timeoutMs 60000, pollMs 1000
 */
export async function waitForLevel(opts: ThrottleOptions & { level?: number; timeoutMs?: number; pollMs?: number } = {}): Promise<WaitResult> {
  const level = opts.level ?? 1;
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const pollMs = opts.pollMs ?? 1_000;
  const { config, deps, dir } = setup(opts);
  const state = State.open(dir);
  const started = Date.now();
  try {
    let report = await measure(deps, config.config, state, 'library');
    while (report.throttle_level > level && Date.now() - started < timeoutMs) {
      // a timer cannot wait longer than MAX_TIMER_MS: Node fires a longer one at once
      await deps.sleep(Math.min(Math.max(10, pollMs), MAX_TIMER_MS, Math.max(0, timeoutMs - (Date.now() - started))));
      report = await measure(deps, config.config, state, 'library');
    }
    return { ok: report.throttle_level <= level, waitedMs: Date.now() - started, report };
  } finally {
    state.close();
  }
}
