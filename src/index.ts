/**
 * agentctl as a library, for Node orchestrators. Everything here works on the same state
 * file as the CLI, so decisions made in-process and by `agentctl` agree.
 *
 * @example
 * import { waitForLevel, recommendedAgentCount } from 'agentctl';
 * const { ok } = await waitForLevel({ level: 1, timeoutMs: 60_000 });
 * if (ok) startAgents(await recommendedAgentCount());
 */
export { applyDelay, getMetrics, isUnderPressure, recommendedAgentCount, waitForLevel, type ThrottleOptions, type WaitResult } from './core/api.js';
export { measure, seedMetrics, throttleDisabled, type MeasureDeps, type ThrottleReport } from './core/measure.js';
export {
  DEFAULT_THROTTLE,
  LEVEL_NAMES,
  nextLevel,
  paramsFor,
  rawLevel,
  type LevelName,
  type LevelState,
  type RawLevel,
  type ThrottleLevel,
  type ThrottleParams,
  type ThrottleSettings,
} from './core/throttle.js';
export { loadConfig } from './core/config/load.js';
export { type Config, type LoadedConfig, type LoadOptions, type ServiceSpec, type Source } from './core/config/types.js';
export { resolveStateDir, State, type EventInput, type EventRow } from './core/state.js';
export { bootId, getIdentity, isSameProcess, sameIdentity, type ProcessIdentity } from './core/identity.js';
export { countAgents, listProcesses, programName, type AgentCounts, type ProcInfo } from './core/proc.js';
export { cpuUsedPct, systemSampler, type Sampler, type Snapshot } from './core/resources.js';
export { formatDuration, parseDuration, parseSize, tryParseDuration, tryParseSize } from './core/units.js';
export { ConfigError, EXIT, ExitError, StateError, UsageError } from './core/errors.js';
