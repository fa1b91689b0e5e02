/** agentctl ps: registered runs and the agents agentctl did not start. */
import type { Ctx, Outcome, Ui } from '../core/ctx.js';
import { getIdentity, readProcStat } from '../core/identity.js';
import { programName, readProcFile } from '../core/proc.js';
import { modeAt } from '../core/policy.js';
import { getHealth } from '../core/runs/health.js';
import { liveRuns, runAlive, type RunRow } from '../core/runs/registry.js';
import { waitingRestarts } from '../core/runs/restarts.js';
import { logFile } from '../core/runs/files.js';
import type { FleetSettings } from '../core/config/types.js';
import { EXIT, ExitError } from '../core/errors.js';
import { type FleetStatus, fleetStatus, noteFleetSync } from '../core/fleet/fleet.js';
import { FleetUnreachable } from '../core/fleet/pg.js';
import { reconcileAll } from '../core/runs/reconcile.js';
import { notePeakRss, readMemory } from '../core/runs/usage.js';
import { printable, redactArgv, redactText, showArgv } from '../core/text.js';
import { formatBytes, formatDuration } from '../core/units.js';
import { hostAgents, type HostAgents, lastLevel, unmanagedAgents } from '../core/hostcap.js';
import { throttleDisabled } from '../core/measure.js';
import type { CommandDecl, OptionValues } from '../core/declaration.js';
import { parseInterval } from '../core/live/interval.js';

export const declaration: CommandDecl = {
  name: 'ps',
  description: 'list registered runs and the agents agentctl did not start; --watch for the live view (as agentctl top)',
  options: [
    { flags: '--watch [interval]', help: 'the live view: redraw every interval on a terminal (q or Ctrl-C leaves); piped, a snapshot per interval', preset: '1s' },
    { flags: '--fleet', help: 'also the fleet-wide leases per group and host, from PostgreSQL (needs [fleet])' },
  ],
  examples: [
    'agentctl ps',
    'agentctl ps --json | jq \'.runs[] | select(.breaker != "closed")\'',
    'agentctl ps --watch',
    "agentctl ps --watch 5s --json | jq -c '.runs[] | {name, cpu_pct}'",
    'agentctl ps --fleet',
  ],
};

export interface PsRun {
  readonly run_id: string;
  readonly name: string;
  readonly group: string;
  readonly priority: number;
  readonly mode: string;
  readonly state: string;
  readonly pid: number | null;
  readonly uptime_ms: number;
  /** CPU time used so far (user + system), ms */
  readonly cpu_ms: number | null;
  readonly rss_bytes: number | null;
  /** the largest peak RSS (VmHWM) of its process any reading has seen */
  readonly peak_rss_bytes: number | null;
  readonly ports: unknown;
  readonly breaker: string;
  readonly command: readonly string[];
  readonly log_path: string | null;
  /** spawn -d --restart: its policy, its place in the chain (0: the first run), and while its supervisor waits to restart it, when */
  readonly restart_policy?: string;
  readonly restart_attempt?: number;
  readonly restart_at?: number | null;
}

export interface PsAgent {
  readonly pid: number;
  readonly program: string;
  readonly command: string;
  readonly uptime_ms: number | null;
  readonly cpu_ms: number | null;
  readonly rss_bytes: number | null;
}

export interface PsResult {
  readonly runs: readonly PsRun[];
  readonly unmanaged: readonly PsAgent[];
  /** agents on the host against the host's cap (the last recorded level's max agents) */
  readonly host: HostAgents;
  /** with --fleet: the leases per group and host, or why PostgreSQL could not say */
  readonly fleet?: PsFleet;
}

export type PsFleet = { readonly host_id: string; readonly groups: FleetStatus['groups'] } | { readonly error: string };

const TICK_MS = 10; // USER_HZ is 100 on every Linux agentctl supports
const PAGE = 4096;

function procUsage(pid: number): { cpu_ms: number | null; rss_bytes: number | null } {
  const st = readProcStat(pid);
  const statm = readProcFile(`/proc/${pid}/statm`);
  const rssPages = statm ? Number(statm.split(' ')[1]) : NaN;
  return { cpu_ms: st ? st.cpuTicks * TICK_MS : null, rss_bytes: Number.isFinite(rssPages) ? rssPages * PAGE : null };
}

/**
 * A run's CPU time, RSS and peak RSS now: the RSS and the kernel's peak from one read of its
 * status (so the peak is never below the RSS shown beside it), the peak no lower than its row's.
 */
function runUsage(pid: number, rowPeak: number | null): { cpu_ms: number | null; rss_bytes: number | null; peak_rss_bytes: number | null } {
  const st = readProcStat(pid);
  const mem = readMemory(pid);
  const peaks = [rowPeak, mem.peakRssBytes, mem.rssBytes].filter((v): v is number => v !== null);
  return { cpu_ms: st ? st.cpuTicks * TICK_MS : null, rss_bytes: mem.rssBytes, peak_rss_bytes: peaks.length ? Math.max(...peaks) : null };
}

export async function run(opts: OptionValues, _args: readonly string[], ctx: Ctx): Promise<Outcome<PsResult>> {
  if (opts.watch !== undefined) {
    const intervalMs = parseInterval(String(opts.watch), '--watch');
    // the live view's code loads only here: plain `ps` does not pay for it
    const { runLive } = await import('../core/live/loop.js');
    await runLive(ctx, { intervalMs, command: 'ps', title: 'agentctl ps --watch' });
    return {};
  }
  const loaded = ctx.config();
  const state = ctx.state();
  const now = ctx.now();
  reconcileAll(state, loaded, now, 'ps');
  await noteFleetSync(ctx, state, loaded, now); // renew this host's fleet leases, release ended runs'
  const live = state.guard(() => liveRuns(state));
  const runs: PsRun[] = live.map((r: RunRow) => {
    const usage = r.pid !== null && runAlive(r, getIdentity) ? runUsage(r.pid, r.peak_rss_bytes) : { cpu_ms: null, rss_bytes: null, peak_rss_bytes: r.peak_rss_bytes };
    const ports = r.ports ? (JSON.parse(r.ports) as number[]) : [];
    return psRow(state, r, now, { state: r.state, pid: r.pid, uptime_ms: now - r.started_at, ...usage, ports, log_path: r.mode === 'detached' ? logFile(state, r) : null });
  });
  // the row keeps the largest peak anyone has shown: what this reading adds is written back
  const grown = runs.filter((x, i) => x.peak_rss_bytes !== null && x.peak_rss_bytes !== live[i]!.peak_rss_bytes);
  if (grown.length) state.write(() => grown.forEach((x) => notePeakRss(state, x.run_id, x.peak_rss_bytes)));
  // runs that ended and wait for their supervisor to restart them, unless one of the name runs again
  for (const r of state.guard(() => waitingRestarts(state, getIdentity))) if (!live.some((l) => l.name === r.name)) runs.push(waitingRow(state, r, now));
  const procs = await ctx.listProcesses();
  const bootMs = now - Number(readProcFile('/proc/uptime')?.split(' ')[0] ?? 0) * 1000;
  const byPid = new Map(procs.map((p) => [p.pid, p]));
  const unmanaged: PsAgent[] = [];
  for (const pid of unmanagedAgents(procs, live, loaded.config.agents)) {
    const p = byPid.get(pid)!;
    const st = readProcStat(pid);
    unmanaged.push({
      pid,
      program: programName(p.argv),
      command: redactText(p.cmdline).slice(0, 200),
      uptime_ms: st ? Math.max(0, now - (bootMs + Number(st.startTicks) * TICK_MS)) : null,
      ...procUsage(pid),
    });
  }
  const host = hostAgents(loaded.config, { managed: live.length, unmanaged: unmanaged.length, level: state.guard(() => lastLevel(state)), disabled: throttleDisabled(ctx.env) });
  const fleet = opts.fleet ? await psFleet(ctx, loaded.config.fleet) : undefined;
  return { data: { runs, unmanaged, host, ...(fleet ? { fleet } : {}) }, alwaysPrint: true };
}

const restartOf = (r: RunRow) => (r.restart_policy ? { restart_policy: r.restart_policy, restart_attempt: r.restart_attempt ?? 0, restart_at: r.restart_at ?? null } : {});

/** What a ps row holds beside the run's own fields: a live reading, or a waiting restart's. */
type RowReading = Pick<PsRun, 'state' | 'pid' | 'uptime_ms' | 'cpu_ms' | 'rss_bytes' | 'peak_rss_bytes' | 'ports' | 'log_path'>;

/** A run as ps lists it. */
function psRow(state: Parameters<typeof logFile>[0], r: RunRow, now: number, x: RowReading): PsRun {
  return {
    run_id: r.id,
    name: r.name,
    group: r.grp,
    priority: r.priority,
    mode: r.mode,
    state: x.state,
    pid: x.pid,
    uptime_ms: x.uptime_ms,
    cpu_ms: x.cpu_ms,
    rss_bytes: x.rss_bytes,
    peak_rss_bytes: x.peak_rss_bytes,
    ports: x.ports,
    breaker: modeAt(getHealth(state, r.name), now),
    command: redactArgv(JSON.parse(r.command) as string[]), // runs stored before redaction may hold secrets
    log_path: x.log_path,
    ...restartOf(r),
  };
}

/** An ended run whose supervisor waits to restart it: state `restarting`, with when; no process. */
function waitingRow(state: Parameters<typeof logFile>[0], r: RunRow, now: number): PsRun {
  return psRow(state, r, now, { state: 'restarting', pid: null, uptime_ms: 0, cpu_ms: r.cpu_ms, rss_bytes: null, peak_rss_bytes: r.peak_rss_bytes, ports: [], log_path: logFile(state, r) });
}

/** The state column: a waiting restart says when it asks admission again. */
function stateText(x: PsRun, now: number): string {
  if (x.state !== 'restarting') return x.state;
  const left = (x.restart_at ?? 0) - now;
  return left > 0 ? `restarting in ${formatDuration(left)}` : 'restarting';
}

/** --fleet: the fleet's leases; local state is listed whether or not PostgreSQL answers. */
async function psFleet(ctx: Ctx, fleet: FleetSettings | undefined): Promise<PsFleet> {
  if (!fleet) throw new ExitError(EXIT.config, '--fleet: no fleet configured; set [fleet] url = "postgres://..." (see docs/fleet-postgres.md)', 'fleet_not_configured');
  try {
    const s = await fleetStatus(fleet);
    return { host_id: s.host_id, groups: s.groups };
  } catch (err) {
    if (!(err instanceof FleetUnreachable)) throw err;
    ctx.note(`agentctl: warning: fleet: ${err.message}`);
    return { error: err.message };
  }
}

/** The --fleet section: one line per group, its leases per host. */
function renderFleet(f: PsFleet, ui: Ui): string {
  if ('error' in f) return ui.c.yellow(`fleet: ${f.error}`);
  if (f.groups.length === 0) return 'fleet: no fleet caps and no leases';
  const rows = f.groups.map((g) => [
    g.group,
    g.cap === null ? `${g.used}` : `${g.used} of ${g.cap}`,
    Object.entries(g.hosts)
      .map(([h, n]) => `${h === f.host_id ? `${h} (this host)` : h} ${n}`)
      .join(', ') || '-',
  ]);
  return `fleet leases (this host: ${f.host_id}):\n${ui.table(['group', 'leases', 'hosts'], rows, { hosts: 'wrap' })}`;
}

export function render(r: PsResult, ui: Ui): string {
  const out: string[] = [];
  const h = r.host;
  const cap = h.max_agents === null ? 'no host cap (throttling disabled)' : `${h.agents} of ${h.max_agents} at level ${h.level}`;
  const line = `host agents: ${cap} (${h.managed} started by agentctl, ${h.unmanaged} other${h.unmanaged === 1 ? '' : 's'})`;
  out.push(h.max_agents !== null && h.agents >= h.max_agents ? ui.c.yellow(line) : line);
  if (r.runs.length === 0) out.push('no runs');
  else {
    out.push(
      ui.table(
        ['run', 'name', 'group', 'prio', 'state', 'pid', 'uptime', 'cpu', 'rss', 'breaker', 'command'],
        r.runs.map((x) => [
          x.run_id,
          x.name,
          x.group,
          x.priority,
          stateText(x, Date.now()),
          x.pid ?? '-',
          // a waiting restart runs no process: it has no uptime to show
          x.state === 'restarting' ? '-' : formatDuration(x.uptime_ms),
          x.cpu_ms === null ? '-' : formatDuration(x.cpu_ms),
          x.rss_bytes === null ? '-' : formatBytes(x.rss_bytes),
          x.breaker === 'closed' ? x.breaker : ui.c.red(x.breaker),
          showArgv(x.command, 60),
        ]),
        // on a narrow terminal the columns that matter least leave first (--wide or --json have them)
        { prio: 'drop', cpu: 'drop', group: 'drop', rss: 'drop', breaker: 'drop', name: 'cut-last', command: 'cut' },
      ),
    );
  }
  if (r.unmanaged.length) {
    out.push('', `agents not started by agentctl: ${r.unmanaged.length}`);
    out.push(
      ui.table(
        ['pid', 'program', 'uptime', 'cpu', 'rss', 'command'],
        r.unmanaged.map((a) => [
          a.pid,
          a.program,
          a.uptime_ms === null ? '-' : formatDuration(a.uptime_ms),
          a.cpu_ms === null ? '-' : formatDuration(a.cpu_ms),
          a.rss_bytes === null ? '-' : formatBytes(a.rss_bytes),
          printable(a.command, 60),
        ]),
        { program: 'cut', command: 'cut' },
      ),
    );
  }
  if (r.fleet) out.push('', renderFleet(r.fleet, ui));
  return out.join('\n');
}
