/**
 * Configuration: TOML files, AGENTCTL_* environment, flags, built-in defaults.
 * Precedence: flag > AGENTCTL_* env > ./agentctl.toml > ~/.config/agentctl/config.toml > defaults.
 * `--config FILE` (or AGENTCTL_CONFIG) names the one file to read instead of the two defaults.
 * Unknown keys and out-of-range values are errors naming the file, key and line.
 * The two default files are read only when they (and their folder) belong to the invoking user
 * or root and no one else can write them; others are ignored with a reason (LoadedConfig.ignored).
 * A file named by --config or AGENTCTL_CONFIG is trusted: the caller chose it.
 */
import { ConfigError, UsageError } from '../errors.js';
import { DEFAULT_THROTTLE } from '../throttle.js';
import { configCandidates, configDistrust, type FileLayer, readLayer, validateLayer } from './files.js';
import { displayService, displayValue, envName, KEYS } from './keys.js';
import type { AgentSpec, Config, FleetSettings, FlagValues, HookSpec, IgnoredConfig, LoadedConfig, LoadOptions, ServiceSpec, Source } from './types.js';

type Effective = Map<string, { value: unknown; source: Source }>;

/** Load, validate and merge the configuration. Throws ConfigError (exit 78) or UsageError. */
export function loadConfig(opts: LoadOptions = {}): LoadedConfig {
  const env = opts.defaultsOnly ? {} : (opts.env ?? process.env);
  const ignored: IgnoredConfig[] = [];
  const layers = readLayers(opts, ignored);
  const { effective, services, fleetAgents, hooks } = mergeLayers(layers, env, opts.flags ?? {});
  const get = <T>(k: string) => effective.get(k)!.value as T;
  checkFleet(effective);
  // the fleet is not in the hash: each entry has its own (core/agents/), so editing one entry
  // does not make every run on the host look drifted
  // hooks are not in it either: adding one changes no run's behaviour
  const config = { ...buildConfig(get, services.value), fleetAgents, hooks };
  const entries = [...effective.entries()].map(([key, e]) => ({ key, value: displayValue(key, e.value), source: e.source }));
  entries.push({ key: 'services', value: services.value.map(displayService), source: services.source });
  const hash = fnv1a64(JSON.stringify(entries.map((e) => [e.key, e.value])));
  return { config, entries, files: layers.map((l) => l.path), hash, ignored };
}

/** The files to read, lowest precedence first; a default file someone else could write is left out and listed in `ignored`. */
function readLayers(opts: LoadOptions, ignored: IgnoredConfig[]): FileLayer[] {
  return (opts.defaultsOnly ? [] : configCandidates(opts))
    .filter((c) => {
      if (c.required) return true; // named explicitly: trusted
      const reason = configDistrust(c.path);
      if (reason !== undefined) ignored.push({ path: c.path, reason });
      return reason === undefined;
    })
    .map((c) => readLayer(c.kind, c.path, c.required, c.via))
    .filter((l): l is FileLayer => l !== undefined);
}

/** Every key's effective value and its source: defaults, then files, then AGENTCTL_* variables, then flags. */
function mergeLayers(
  layers: readonly FileLayer[],
  env: NodeJS.ProcessEnv,
  flags: FlagValues,
): { effective: Effective; services: { value: ServiceSpec[]; source: Source }; fleetAgents: AgentSpec[]; hooks: HookSpec[] } {
  const effective: Effective = new Map<string, { value: unknown; source: Source }>();
  for (const spec of KEYS) {
    effective.set(`${spec.section}.${spec.key}`, { value: spec.validate(spec.default), source: { kind: 'default', detail: 'built-in' } });
  }
  let services: { value: ServiceSpec[]; source: Source } = { value: [], source: { kind: 'default', detail: 'built-in' } };
  let fleetAgents: AgentSpec[] = [];
  let hooks: HookSpec[] = [];

  for (const layer of layers) {
    const v = validateLayer(layer);
    for (const [k, value] of v.values) effective.set(k, { value, source: { kind: layer.kind, detail: layer.path } });
    if (v.services) services = { value: v.services, source: { kind: layer.kind, detail: layer.path } };
    if (v.fleetAgents) fleetAgents = v.fleetAgents; // like services: the highest file with [[agents]] holds the whole fleet
    if (v.hooks) hooks = v.hooks; // the same for [[hooks]]
  }

  for (const spec of KEYS) {
    const name = envName(spec.section, spec.key);
    const text = env[name];
    if (text === undefined || text === '') continue;
    try {
      effective.set(`${spec.section}.${spec.key}`, { value: spec.validate(spec.fromEnv(text)), source: { kind: 'env', detail: name } });
    } catch (err) {
      throw new ConfigError(`environment variable ${name}: ${spec.section}.${spec.key}: ${(err as Error).message}`, { file: `env:${name}`, key: `${spec.section}.${spec.key}` });
    }
  }

  for (const [k, { value, flag }] of Object.entries(flags)) {
    const spec = KEYS.find((s) => `${s.section}.${s.key}` === k);
    if (!spec) throw new UsageError(`${flag}: ${k} is not a configuration key`);
    try {
      effective.set(k, { value: spec.validate(value), source: { kind: 'flag', detail: flag } });
    } catch (err) {
      throw new UsageError(`${flag}: ${(err as Error).message}`);
    }
  }

  return { effective, services, fleetAgents, hooks };
}

/** The typed Config from the merged flat values. */
function buildConfig(get: <T>(k: string) => T, services: readonly ServiceSpec[]): Omit<Config, 'fleetAgents' | 'hooks'> {
  return {
    throttle: {
      ...DEFAULT_THROTTLE,
      memoryPct: get('throttle.memory_pct'),
      cpuPct: get('throttle.cpu_pct'),
      maxAgents: get('throttle.max_agents'),
      batchSize: get('throttle.batch_size'),
      delayMs: get('throttle.delay_ms'),
      maxConcurrent: get('throttle.max_concurrent'),
      reasoningEffort: get('throttle.reasoning_effort'),
      recoveryMs: get('throttle.recovery_interval'),
      sampleMaxAgeMs: get('throttle.sample_max_age'),
      cpuWindowMs: get('throttle.cpu_window'),
      psiMemoryFullPct: get('throttle.psi_memory_full'),
      psiMemorySomePct: get('throttle.psi_memory_some'),
      swapInRate: get('throttle.swap_in_rate'),
      loadPerCore: get('throttle.load_per_core'),
    },
    spawn: {
      minUptimeMs: get('spawn.min_uptime'),
      cooldownMs: get('spawn.cooldown'),
      minIntervalMs: get('spawn.min_interval'),
      policy: {
        startupBackoffMs: get('spawn.backoff_startup'),
        failureBackoffMs: get('spawn.backoff_failure'),
        maxBackoffMs: get('spawn.backoff_max'),
        breakerFailures: get('spawn.breaker_failures'),
        maxRestartsPerHour: get('spawn.max_restarts_per_hour'),
        breakerPauseMs: get('spawn.breaker_pause'),
        resetAfterMs: get('spawn.reset_after'),
        hostBreakerFailures: get('spawn.host_breaker_failures'),
        hostBreakerWindowMs: get('spawn.host_breaker_window'),
        hostBreakerPauseMs: get('spawn.host_breaker_pause'),
      },
      countUnmanaged: get('spawn.count_unmanaged'),
      killGraceMs: get('spawn.kill_grace'),
      logMaxBytes: get('spawn.log_max'),
      logsPerName: get('spawn.logs_per_name'),
    },
    ports: get('ports.range'),
    env: { ttlMs: get('env.ttl') },
    reap: { maxRuntimeMs: get('reap.max_runtime'), idleMs: get('reap.idle'), graceMs: get('reap.grace') },
    dedupe: { ignore: get('dedupe.ignore') },
    doctor: {
      loadWarn: get<number[]>('doctor.load_per_core')[0]!,
      loadFail: get<number[]>('doctor.load_per_core')[1]!,
      cpuIdleWarn: get('doctor.cpu_idle_warn'),
      memWarn: get<number[]>('doctor.memory_available')[0]!,
      memFail: get<number[]>('doctor.memory_available')[1]!,
      psiWarn: get('doctor.psi_memory_warn'),
      failRateWarn: get<number[]>('doctor.failure_rate')[0]!,
      failRateFail: get<number[]>('doctor.failure_rate')[1]!,
      poolWarn: get('doctor.port_pool_warn'),
      spawnLoopErrors: get('doctor.spawn_loop_errors'),
      restartLoopCount: get('doctor.restart_loop_count'),
      restartLoopWindowMs: get('doctor.restart_loop_window'),
      restartLoopLifetimeMs: get('doctor.restart_loop_lifetime'),
      diskWarnBytes: get<number[]>('doctor.disk_free')[0]!,
      diskFailBytes: get<number[]>('doctor.disk_free')[1]!,
    },
    agents: { patterns: get('agents.patterns'), claude: get('agents.claude') },
    services,
    fleet: fleetSettings(get),
    state: {
      eventsMaxAgeMs: get('state.events_max_age'),
      eventsMaxRows: get('state.events_max_rows'),
      samplesMaxAgeMs: get('state.samples_max_age'),
      samplesMaxRows: get('state.samples_max_rows'),
    },
  };
}

/** [fleet] is on when fleet.url is set. */
function fleetSettings(get: <T>(k: string) => T): FleetSettings | undefined {
  const url = get<string>('fleet.url');
  if (url === '') return undefined;
  const hostId = get<string>('fleet.host_id');
  return {
    url,
    hostId: hostId === '' ? undefined : hostId,
    leaseTtlMs: get('fleet.lease_ttl'),
    timeoutMs: get('fleet.timeout'),
    onUnreachable: get('fleet.on_unreachable'),
    caps: get('fleet.caps'),
  };
}

/** Fleet caps without a fleet URL would cap nothing, silently: say so instead. */
function checkFleet(effective: Effective): void {
  const caps = effective.get('fleet.caps')!;
  if (effective.get('fleet.url')!.value !== '' || Object.keys(caps.value as object).length === 0) return;
  const from = caps.source.kind === 'env' ? `environment variable ${caps.source.detail}` : `config file ${caps.source.detail}`;
  throw new ConfigError(`${from}: fleet.caps: set, but fleet.url is empty; give [fleet] url = "postgres://..." or remove the caps`, {
    file: caps.source.kind === 'env' ? `env:${caps.source.detail}` : caps.source.detail,
    key: 'fleet.caps',
  });
}

/**
 * FNV-1a, 64 bits as two 32-bit lanes: enough to tell configs apart, and it spares every
 * command loading node:crypto (a measurable share of start-up) for one hash.
 */
export function fnv1a64(text: string): string {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193 + 2);
  }
  return (a >>> 0).toString(16).padStart(8, '0') + (b >>> 0).toString(16).padStart(8, '0');
}
