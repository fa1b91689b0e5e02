/** agentctl throttle-status: the host's pressure as a throttle level, for people and scripts. */
import type { Ctx, Outcome, Ui } from '../core/ctx.js';
import { EXIT, ExitError, UsageError } from '../core/errors.js';
import { checkOutputPath, writeFileAtomic } from '../core/fsutil.js';
import { measure, type MeasureDeps, seedMetrics, type ThrottleReport } from '../core/measure.js';
import { type Metric, writeMetricsFile } from '../core/prometheus.js';
import type { ThrottleLevel } from '../core/throttle.js';
import { formatBytes, formatDuration, formatPct, MAX_TIMER_MS, parseDuration, parseIntInRange } from '../core/units.js';
import type { Config } from '../core/config/types.js';
import { hostAgents, type HostAgents, unmanagedAgents } from '../core/hostcap.js';
import { getIdentity } from '../core/identity.js';
import type { ProcInfo } from '../core/proc.js';
import { levelWaitText, timeoutTail } from '../core/progress.js';
import { liveRuns, runAlive } from '../core/runs/registry.js';
import type { State } from '../core/state.js';
import type { CommandDecl, OptionValues } from '../core/declaration.js';

export const declaration: CommandDecl = {
  name: 'throttle-status',
  description: 'sample memory, CPU, load, swap, PSI and agent counts; report the throttle level (0 normal .. 3 heavy)',
  options: [
    // --watch alone: often enough to see a spike, rare enough to cost nothing
    { flags: '--watch [interval]', help: 'print a new reading every interval until interrupted', preset: '2s' },
    { flags: '--max-level <n>', help: 'exit 75 when the level is above n (0-3)' },
    { flags: '--wait-level <n>', help: 'wait until the level is at or below n (0-3); exit 75 on timeout' },
    { flags: '--timeout <duration>', help: 'how long --wait-level waits', default: '60s' },
    { flags: '--write <file>', help: 'also write resource_metrics.json (seed format) to file, atomically', path: 'file' },
    { flags: '--prometheus <file>', help: 'also write node_exporter textfile metrics to file, atomically', path: 'file' },
  ],
  examples: [
    'agentctl throttle-status',
    'agentctl throttle-status --json',
    'agentctl throttle-status --max-level 1 && make heavy',
    'agentctl throttle-status --wait-level 1 --timeout 60s && ./run-batch.sh',
    'agentctl throttle-status --watch 5s',
    'agentctl throttle-status --quiet --prometheus /var/lib/node_exporter/agentctl.prom',
    'AGENTCTL_DISABLE_THROTTLE=1 agentctl throttle-status   # forces level 0, and says so',
  ],
};

/** --wait-level polls at most this often; each poll is one sample. */
const WAIT_POLL_MS = 1_000;

export interface ThrottleStatusResult extends ThrottleReport {
  /** agents on the host (live runs of every group + agents agentctl did not start) against this level's cap */
  readonly host_agents: HostAgents;
  /** present with --max-level */
  readonly max_level?: { readonly limit: number; readonly ok: boolean };
  /** present with --wait-level */
  readonly wait?: { readonly level: number; readonly ok: boolean; readonly waited_ms: number; readonly timeout_ms: number };
}

interface Parsed {
  maxLevel?: number;
  waitLevel?: number;
  timeoutMs: number;
  watchMs?: number;
  write?: string;
  prometheus?: string;
}

function parseOptions(opts: OptionValues): Parsed {
  const p: Parsed = { timeoutMs: parseDuration(String(opts.timeout), '--timeout') };
  if (opts.maxLevel !== undefined) p.maxLevel = parseIntInRange(String(opts.maxLevel), '--max-level', 0, 3);
  if (opts.waitLevel !== undefined) p.waitLevel = parseIntInRange(String(opts.waitLevel), '--wait-level', 0, 3);
  if (opts.watch !== undefined) {
    p.watchMs = parseDuration(String(opts.watch), '--watch', MAX_TIMER_MS); // a timer paces the readings
    if (p.watchMs < 100) throw new UsageError(`--watch: ${String(opts.watch)} is too short; expected an interval of at least 100ms`);
    if (p.waitLevel !== undefined || p.maxLevel !== undefined) {
      throw new UsageError('--watch: cannot be combined with --max-level or --wait-level; use one or the other');
    }
  }
  if (opts.write !== undefined) {
    checkOutputPath(String(opts.write), '--write');
    p.write = String(opts.write);
  }
  if (opts.prometheus !== undefined) {
    checkOutputPath(String(opts.prometheus), '--prometheus');
    p.prometheus = String(opts.prometheus);
  }
  return p;
}

/**
 * One reading, and the host's agents against the cap it sets: from the same walk of the
 * process table, and the runs as recorded (a run whose process is gone is not counted).
 */
async function reading(ctx: Ctx, config: Config, state: State): Promise<ThrottleStatusResult> {
  let procs: ProcInfo[] = [];
  const deps: MeasureDeps = { now: ctx.now, sleep: ctx.sleep, env: ctx.env, sampler: ctx.sampler, listProcesses: async () => (procs = await ctx.listProcesses()) };
  const r = await measure(deps, config, state);
  const live = state.guard(() => liveRuns(state)).filter((x) => x.pid === null || runAlive(x, getIdentity));
  const host_agents = hostAgents(config, { managed: live.length, unmanaged: unmanagedAgents(procs, live, config.agents).length, level: r.throttle_level, disabled: r.disabled });
  return { ...r, host_agents };
}

export function prometheusMetrics(r: ThrottleReport | ThrottleStatusResult, nowMs: number): Metric[] {
  const g = (name: string, help: string, value: number | null, labels?: Record<string, string>): Metric => ({
    name,
    help,
    type: 'gauge',
    samples: [labels ? { labels, value } : { value }],
  });
  const psi = r.psi;
  return [
    g('agentctl_throttle_level', 'Throttle level after gradual recovery: 0 normal, 1 light, 2 medium, 3 heavy.', r.throttle_level),
    g('agentctl_throttle_raw_level', 'Throttle level the current readings call for.', r.raw_level),
    g('agentctl_throttle_max_agents', 'Agents the current level allows.', r.throttle_params.max_agents),
    ...('host_agents' in r ? [g('agentctl_host_agents', 'Agents on the host the cap counts: live runs of every group plus agents agentctl did not start.', r.host_agents.agents)] : []),
    g('agentctl_throttle_disabled', '1 when AGENTCTL_DISABLE_THROTTLE forces level 0.', r.disabled ? 1 : 0),
    g('agentctl_memory_used_percent', 'Memory used, percent of total (MemTotal - MemAvailable).', r.memory_used_pct),
    g('agentctl_cpu_used_percent', 'CPU used, percent, over the measuring window.', r.cpu_used_pct),
    g('agentctl_load_per_core', 'One-minute load average divided by the number of CPUs.', r.load_per_core),
    g('agentctl_swap_used_percent', 'Swap used, percent of swap total.', r.swap_used_pct),
    {
      name: 'agentctl_swap_pages_per_second',
      help: 'Pages swapped per second over the measuring window.',
      type: 'gauge',
      samples: [
        { labels: { direction: 'in' }, value: r.swap_in_per_s },
        { labels: { direction: 'out' }, value: r.swap_out_per_s },
      ],
    },
    {
      name: 'agentctl_psi_avg10',
      help: 'Pressure stall information, percent of the last 10 s.',
      type: 'gauge',
      samples: psi
        ? [
            { labels: { resource: 'cpu', kind: 'some' }, value: psi.cpu_some_avg10 },
            { labels: { resource: 'memory', kind: 'some' }, value: psi.memory_some_avg10 },
            { labels: { resource: 'memory', kind: 'full' }, value: psi.memory_full_avg10 },
            { labels: { resource: 'io', kind: 'some' }, value: psi.io_some_avg10 },
            { labels: { resource: 'io', kind: 'full' }, value: psi.io_full_avg10 },
          ]
        : [],
    },
    {
      name: 'agentctl_processes',
      help: 'Processes counted on the host, by kind.',
      type: 'gauge',
      samples: [
        { labels: { kind: 'agent' }, value: r.agent_processes },
        { labels: { kind: 'claude' }, value: r.claude_processes },
        { labels: { kind: 'node' }, value: r.node_processes },
      ],
    },
    g('agentctl_last_run_timestamp_seconds', 'When this agentctl command last ran (unix seconds).', Math.floor(nowMs / 1000), { command: 'throttle-status' }),
  ];
}

function writeOutputs(p: Parsed, r: ThrottleReport, nowMs: number): void {
  const attempt = (flag: string, path: string, write: () => void) => {
    try {
      write();
    } catch (err) {
      throw new ExitError(EXIT.failed, `${flag}: cannot write ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'write_failed');
    }
  };
  if (p.write) attempt('--write', p.write, () => writeFileAtomic(p.write!, `${JSON.stringify(seedMetrics(r), null, 2)}\n`));
  if (p.prometheus) attempt('--prometheus', p.prometheus, () => writeMetricsFile(p.prometheus!, prometheusMetrics(r, nowMs)));
}

async function watch(ctx: Ctx, p: Parsed, intervalMs: number): Promise<Outcome<ThrottleStatusResult>> {
  let stop = false;
  let wake: (() => void) | undefined;
  const onSignal = () => {
    stop = true;
    wake?.();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    while (!stop) {
      const config = ctx.config().config;
      const r = await reading(ctx, config, ctx.state());
      writeOutputs(p, r, ctx.now());
      ctx.print(r, (d, ui) => renderLine(d, ui));
      if (stop) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, intervalMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
  return {};
}

/** Read again until the level is at or below `level` or time is out, with a status line on a terminal: the level now, and why. */
async function waitForLevel(ctx: Ctx, w: { config: Config; state: State; first: ThrottleStatusResult; started: number; level: number; timeoutMs: number }): Promise<ThrottleStatusResult> {
  let r = w.first;
  if (r.throttle_level <= w.level) return r;
  const progress = ctx.progress();
  // the timeout counts from before the first reading; the line's clock too
  const tail = timeoutTail(w.timeoutMs, ctx.now() - w.started);
  try {
    while (r.throttle_level > w.level && ctx.now() - w.started < w.timeoutMs) {
      progress.update(levelWaitText(r, w.level), tail);
      await ctx.sleep(Math.max(0, Math.min(WAIT_POLL_MS, w.timeoutMs - (ctx.now() - w.started))));
      r = await reading(ctx, w.config, w.state);
    }
    return r;
  } finally {
    progress.done();
  }
}

export async function run(opts: OptionValues, _args: readonly string[], ctx: Ctx): Promise<Outcome<ThrottleStatusResult>> {
  const p = parseOptions(opts);
  const config = ctx.config().config;
  const state = ctx.state();
  if (p.watchMs !== undefined) return watch(ctx, p, p.watchMs);

  const started = ctx.now();
  let r = await reading(ctx, config, state);
  if (p.waitLevel !== undefined) r = await waitForLevel(ctx, { config, state, first: r, started, level: p.waitLevel, timeoutMs: p.timeoutMs });
  writeOutputs(p, r, ctx.now());

  let result: ThrottleStatusResult = r;
  let exitCode: number = EXIT.ok;
  let message: string | undefined;
  if (p.waitLevel !== undefined) {
    const ok = r.throttle_level <= p.waitLevel;
    const waited = ctx.now() - started;
    result = { ...result, wait: { level: p.waitLevel, ok, waited_ms: waited, timeout_ms: p.timeoutMs } };
    if (!ok) {
      exitCode = EXIT.tryLater;
      message = `throttle level ${r.throttle_level} (${r.throttle_params.name}) stayed above ${p.waitLevel} for ${formatDuration(p.timeoutMs)}: ${r.reasons.join('; ') || 'no reason recorded'}`;
    }
    state.event({
      command: 'throttle-status',
      kind: ok ? 'throttle.wait_done' : 'throttle.wait_timeout',
      subject: `level ${r.throttle_level}`,
      reason: ok ? `level ${r.throttle_level} <= ${p.waitLevel} after ${formatDuration(waited)}` : message!,
      data: { wait_level: p.waitLevel, level: r.throttle_level, waited_ms: waited },
    });
  }
  if (p.maxLevel !== undefined) {
    const ok = r.throttle_level <= p.maxLevel;
    result = { ...result, max_level: { limit: p.maxLevel, ok } };
    if (!ok) {
      exitCode = EXIT.tryLater;
      message = `throttle level ${r.throttle_level} (${r.throttle_params.name}) is above --max-level ${p.maxLevel}: ${r.reasons.join('; ')}`;
      state.event({ command: 'throttle-status', kind: 'throttle.refused', subject: `level ${r.throttle_level}`, reason: message, data: { max_level: p.maxLevel, level: r.throttle_level } });
    }
  }
  return { data: result, exitCode, ...(message ? { message } : {}) };
}

const LEVEL_COLORS = ['green', 'yellow', 'magenta', 'red'] as const;

function levelLabel(level: ThrottleLevel, name: string, ui: Ui): string {
  return ui.c.bold[LEVEL_COLORS[level]](`level ${level} ${name}`);
}

/**
 * One reading, for --watch and logs: its parts two spaces apart on one line, or, where that
 * is wider than the Ui's width, on as few lines as fit, the later ones indented under the first
 * part (the time). A part is never split.
 */
export function renderLine(r: ThrottleReport | ThrottleStatusResult, ui: Ui): string {
  const parts = readingParts(r, ui);
  const indent = ' '.repeat(parts[0]!.length + 2);
  const lines: string[] = [];
  let line = '';
  for (const p of parts) {
    if (line && visible(line) + 2 + visible(p) > ui.width) {
      lines.push(line);
      line = indent + p;
    } else line = line ? `${line}  ${p}` : p;
  }
  lines.push(line);
  return lines.join('\n');
}

// eslint-disable-next-line no-control-regex -- the colour codes this Ui painted take no columns
const visible = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '').length;

function readingParts(r: ThrottleReport | ThrottleStatusResult, ui: Ui): string[] {
  const time = r.timestamp.slice(11, 19);
  return [
    time,
    levelLabel(r.throttle_level, r.throttle_params.name, ui),
    `mem ${formatPct(r.memory_used_pct)}`,
    `cpu ${formatPct(r.cpu_used_pct)}`,
    `load/core ${r.load_per_core.toFixed(2)}`,
    `agents ${r.agent_processes} (claude ${r.claude_processes}, node ${r.node_processes})`,
    'host_agents' in r ? `host ${hostCap(r.host_agents)}` : '',
    r.disabled ? ui.c.yellow('throttling disabled') : '',
  ].filter(Boolean);
}

export function render(r: ThrottleStatusResult, ui: Ui): string {
  const p = r.throttle_params;
  const lines: string[] = [];
  lines.push(
    ui.wrap(
      `Throttle ${levelLabel(r.throttle_level, p.name, ui)}: max agents ${p.max_agents}, batch ${p.batch_size}, delay ${p.delay_ms} ms, max concurrent ${p.max_concurrent}, reasoning ${p.reasoning_effort}`,
      2,
    ),
  );
  if (r.disabled) lines.push(ui.wrap(ui.c.yellow('throttling disabled by AGENTCTL_DISABLE_THROTTLE: level forced to 0'), 2));
  else if (r.reasons.length) lines.push(ui.wrap(`why: ${r.reasons.join('; ')}`, 5));
  lines.push('');
  const psi = r.psi
    ? `cpu ${fmt(r.psi.cpu_some_avg10)}, memory ${fmt(r.psi.memory_some_avg10)}/${fmt(r.psi.memory_full_avg10)}, io ${fmt(r.psi.io_some_avg10)}/${fmt(r.psi.io_full_avg10)} (some/full, % of last 10s)`
    : 'not available on this kernel';
  lines.push(
    ui.pairs([
      ['memory', `${formatPct(r.memory_used_pct)} used, ${formatBytes(r.memory_available_bytes)} of ${formatBytes(r.memory_total_bytes)} available`],
      ['cpu', `${formatPct(r.cpu_used_pct)} used over ${formatDuration(r.cpu_window_ms)}${r.cpu_short_window ? ' (a short window: counts only when saturated)' : ''}`],
      ['load', `${r.load_1m.toFixed(2)} ${r.load_5m.toFixed(2)} ${r.load_15m.toFixed(2)} (${r.load_per_core.toFixed(2)} per core, ${r.cpus} cores)`],
      ['swap', `${formatPct(r.swap_used_pct)} used, ${rate(r.swap_in_per_s)} in, ${rate(r.swap_out_per_s)} out`],
      ['pressure', psi],
      ['agents', `${r.agent_processes} (claude ${r.claude_processes}, node processes ${r.node_processes})`],
      ['host cap', `${hostCap(r.host_agents)} (${r.host_agents.managed} started by agentctl, ${r.host_agents.unmanaged} other${r.host_agents.unmanaged === 1 ? '' : 's'})`],
    ]),
  );
  if (r.max_level) lines.push('', r.max_level.ok ? `at or below --max-level ${r.max_level.limit}` : ui.c.red(`above --max-level ${r.max_level.limit}`));
  if (r.wait) {
    lines.push(
      '',
      r.wait.ok ? `reached level ${r.wait.level} or below after ${formatDuration(r.wait.waited_ms)}` : ui.c.red(`still above level ${r.wait.level} after ${formatDuration(r.wait.waited_ms)}`),
    );
  }
  return lines.join('\n');
}

const hostCap = (h: HostAgents) => (h.max_agents === null ? `${h.agents} agents, no cap` : `${h.agents} of ${h.max_agents} agents`);
const fmt = (n: number | null) => (n === null ? '-' : n.toFixed(2));
const rate = (n: number | null) => (n === null ? 'unknown' : `${n} pages/s`);
