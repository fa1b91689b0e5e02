/**
 * doctor's checks of agents and runs: agents on the host against the cap, the throttle level,
 * duplicate workers, restart loops agentctl did not start, and agentctl's own runs (stale PID
 * files, spawn loops, breakers, the failure rate).
 */
import type { DoctorThresholds } from '../config/types.js';
import { cachedRealPath, procCwd } from '../cwd.js';
import { getIdentity, isSameProcess } from '../identity.js';
import { protectedPids } from '../kill.js';
import { hostAgents, unmanagedAgents } from '../hostcap.js';
import { modeAt, type NameHealth } from '../policy.js';
import { HOST_BREAKER_KEY } from '../runs/health.js';
import { liveRuns, runAlive } from '../runs/registry.js';
import { pidFiles } from '../runs/files.js';
import { parseCommand, readSightings, restartLoops } from '../sightings.js';
import type { State } from '../state.js';
import { groupInstances, type WorkerId } from '../workers.js';
import { printable, redactText, shellWord, showArgv } from '../text.js';
import { formatDuration, formatPct } from '../units.js';
import { type CheckEntry, type Facts, live, ok, skip, type Status } from './check.js';

export const agentRunChecks: readonly CheckEntry[] = [
  {
    id: 'agents.count',
    group: 'agents',
    title: 'agents on the host vs the host cap',
    run: (f) => {
      if (!f.report) return skip('no reading');
      const cfg = f.config?.config;
      if (!cfg) return skip('no configuration');
      // what spawn admits against: live runs of every group plus agents it did not start
      const running = f.state ? f.state.guard(() => liveRuns(f.state!)).filter((r) => r.pid === null || runAlive(r, getIdentity)) : [];
      const h = hostAgents(cfg, { managed: running.length, unmanaged: unmanagedAgents(f.procs, running, cfg.agents).length, level: f.report.throttle_level, disabled: f.report.disabled });
      const refused = f.state ? refusedByHostCap(f.state, f.now - 3_600_000) : 0;
      const cap = h.max_agents ?? Number.POSITIVE_INFINITY;
      const s: Status = h.agents > cap ? 'fail' : h.agents >= cap || refused > 0 ? 'warn' : 'ok';
      const capText = h.max_agents === null ? 'no host cap (throttling disabled)' : `level ${h.level} allows ${h.max_agents}`;
      return {
        status: s,
        value: `${h.agents} agents on the host (${h.managed} started by agentctl, ${h.unmanaged} other${h.unmanaged === 1 ? '' : 's'}); ${capText}${refused ? `; ${refused} spawn${refused === 1 ? '' : 's'} refused by the host cap in the last hour` : ''}`,
        threshold: 'warn at the cap or when it refused spawns in the last hour, fail above it',
        remedy: s === 'ok' ? '' : 'agentctl ps; agentctl events --kind spawn.refused; agentctl reap --shed',
        metric: h.agents,
      };
    },
  },
  {
    id: 'agents.throttle',
    group: 'agents',
    title: 'throttle level',
    run: (f) => {
      if (!f.report) return skip('no reading');
      const l = f.report.throttle_level;
      const s: Status = l >= 3 ? 'fail' : l >= 2 ? 'warn' : 'ok';
      return {
        status: s,
        value: `${l} (${f.report.throttle_params.name})${f.report.reasons.length ? `: ${f.report.reasons.join('; ')}` : ''}`,
        threshold: 'warn at 2, fail at 3',
        remedy: s === 'ok' ? '' : 'agentctl throttle-status',
        metric: l,
      };
    },
  },
  {
    id: 'agents.duplicates',
    group: 'agents',
    title: 'duplicate workers',
    run: (f) => {
      const me = process.getuid?.();
      const guard = protectedPids();
      const uid = new Map(f.procs.map((p) => [p.pid, p.uid]));
      const ignore = (f.config?.config.dedupe.ignore ?? []).map((r) => new RegExp(r));
      // the same rule as dedupe-workers: a script's identity keeps its real folder
      const groups = groupInstances(
        f.procs.filter((p) => p.state !== 'Z' && p.argv.length > 0).map((p) => ({ pid: p.pid, ppid: p.ppid, start: p.startTicks, argv: p.argv })),
        (p, id) => id.script && !guard.has(p.pid) && uid.get(p.pid) === me && !ignore.some((re) => re.test(p.argv.join(' '))),
        { cwdOf: (pid) => procCwd(pid), realpath: cachedRealPath() },
      );
      const dups = [...groups.values()].filter((inst) => inst.length > 1);
      const s: Status = dups.length ? 'warn' : 'ok';
      const where = (id: WorkerId) => (id.folder ? ` in ${id.folder}` : '');
      return {
        status: s,
        value: dups.length ? dups.map((inst) => `${redactText(inst[0]!.id.key)} x${inst.length}${where(inst[0]!.id)}`).join(', ') : 'none',
        threshold: 'one instance per worker',
        remedy: s === 'ok' ? '' : 'agentctl dedupe-workers --dry-run',
        metric: dups.length,
      };
    },
  },
  {
    id: 'agents.restart_loops',
    group: 'agents',
    title: 'restart loops agentctl did not start',
    run: (f, t) => {
      if (!f.state) return skip(f.stateError ?? 'no state');
      const rows = readSightings(f.state, f.now - t.restartLoopWindowMs);
      const loops = restartLoops(rows, { now: f.now, windowMs: t.restartLoopWindowMs, lifetimeMs: t.restartLoopLifetimeMs, minCount: t.restartLoopCount });
      const life = formatDuration(t.restartLoopLifetimeMs);
      const threshold = `fail at >= ${t.restartLoopCount} processes of one command line that started within ${formatDuration(t.restartLoopWindowMs)} and were gone after < ${life}, as readings saw them`;
      if (!loops.length) {
        const pids = new Set(rows.map((r) => `${r.pid}:${r.start_time}`)).size;
        return ok(`none (${pids} agent and service process${pids === 1 ? '' : 'es'} seen in ${formatDuration(t.restartLoopWindowMs)})`, threshold, 0);
      }
      const parentOf = (l: (typeof loops)[number]) => {
        if (!l.parent) return undefined;
        const p = f.procs.find((x) => x.pid === l.parent!.pid && x.startTicks <= Number(l.parent!.childStartTime));
        return p && p.argv.length ? { pid: p.pid, argv: p.argv } : undefined;
      };
      const value = loops
        .map((l) => {
          const parent = parentOf(l);
          const by = parent ? `started by PID ${parent.pid}: ${showArgv(parent.argv, 60)}` : l.parent ? `parent PID ${l.parent.pid} gone` : 'parent unknown';
          return `${l.matched}: ${showArgv(l.argv, 120)}: ${l.count} processes gone after < ${life} in ${formatDuration(l.lastStart - l.firstStart)} (longest seen ${formatDuration(l.longestSeenMs)}; PIDs ${l.pids.join(', ')}${l.count > l.pids.length ? ' newest' : ''}; ${l.alive} alive; ${by})`;
        })
        .join('; ');
      const parent = parentOf(loops[0]!);
      return {
        status: 'fail',
        value,
        threshold,
        remedy: parent ? `ps -o pid,lstart,args -p ${parent.pid} (what restarts it); agentctl ps` : 'agentctl ps; agentctl doctor --check agents.restart_loops (again, while it runs)',
        metric: loops.length,
      };
    },
  },
  {
    id: 'runs.stale',
    group: 'runs',
    title: 'stale PID files and dead runs',
    run: (f) => {
      if (!f.state) return skip(f.stateError ?? 'no state');
      const dead = live(f).filter((r) => r.pid !== null && !runAlive(r, getIdentity)).length;
      const stale = stalePidFiles(f.state).length;
      const s: Status = dead + stale > 0 ? 'warn' : 'ok';
      return { status: s, value: `${dead} dead runs, ${stale} stale PID files`, threshold: 'none', remedy: s === 'ok' ? '' : 'agentctl reap (or doctor --fix)', metric: dead + stale };
    },
  },
  {
    id: 'runs.spawn_loops',
    group: 'runs',
    title: 'spawn loops',
    run: (f, t) => {
      if (!f.state) return skip(f.stateError ?? 'no state');
      const loops = spawnLoops(f, t);
      const threshold = `fail when a name's breaker opened for startup errors, or at >= ${t.spawnLoopErrors} startup errors of one name in 10 min`;
      if (!loops.length) return ok('none', threshold, 0);
      const first = shellWord(loops[0]!.name);
      return {
        status: 'fail',
        value: loops.map(describeSpawnLoop).join('; '),
        threshold,
        remedy: `agentctl events --kind run.failed --since 1h; agentctl stats --name ${first}; once fixed: agentctl breaker reset ${first}`,
        metric: loops.length,
      };
    },
  },
  {
    id: 'runs.host_breaker',
    group: 'runs',
    title: 'host-wide startup-failure breaker',
    run: (f) => {
      if (!f.state) return skip(f.stateError ?? 'no state');
      const threshold = 'closed (it opens when startup errors across all names pass spawn.host_breaker_failures in spawn.host_breaker_window)';
      const row = f.state.db.prepare('SELECT value FROM kv WHERE key = ?').get(HOST_BREAKER_KEY) as { value: string } | undefined;
      if (!row) return ok('closed', threshold, 0);
      const hb = hostBreakerRecord(row.value);
      if (!hb)
        return { status: 'warn', value: `unreadable record in the state (kv ${HOST_BREAKER_KEY}): ${printable(row.value, 60)}`, threshold, remedy: 'agentctl breaker reset --host', metric: null };
      if (hb.notBefore <= f.now) return ok(`closed (last opened ${new Date(hb.openedAt).toISOString()}: ${printable(hb.reason)})`, threshold, 0);
      const failures = hb.failures.slice(-5).map((x) => `${printable(x.name)} ${x.exit_code === null ? 'no exit code' : `exit ${x.exit_code}`} (run ${printable(x.run_id)})`);
      return {
        status: 'fail',
        value: `open since ${new Date(hb.openedAt).toISOString()}, every spawn refused for ${formatDuration(hb.notBefore - f.now)} more: ${printable(hb.reason)}${failures.length ? `; last failures: ${failures.join(', ')}` : ''}`,
        threshold,
        remedy: 'agentctl events --kind run.failed --since 1h; once fixed: agentctl breaker reset --host',
        metric: 1,
      };
    },
  },
  {
    id: 'runs.breakers',
    group: 'runs',
    title: 'open breakers and dead-letter queue',
    run: (f) => {
      if (!f.state) return skip(f.stateError ?? 'no state');
      const open = health(f).filter((x) => modeAt(x.h, f.now) !== 'closed');
      const dlq = (f.state.db.prepare('SELECT COUNT(*) AS n FROM dlq').get() as { n: number }).n;
      const s: Status = open.length || dlq ? 'warn' : 'ok';
      return {
        status: s,
        value: `${open.length} open${open.length ? ` (${open.map((x) => x.name).join(', ')})` : ''}, ${dlq} in the dead-letter queue`,
        threshold: 'none',
        remedy: s === 'ok' ? '' : 'agentctl breaker; agentctl dlq',
        metric: open.length + dlq,
      };
    },
  },
  {
    id: 'runs.failure_rate',
    group: 'runs',
    title: 'failure rate over 24 h',
    run: (f, t) => {
      if (!f.state) return skip(f.stateError ?? 'no state');
      const r = f.state.db.prepare("SELECT SUM(state = 'failed') AS bad, SUM(state IN ('failed', 'exited')) AS ended FROM runs WHERE started_at >= ?").get(f.now - 86_400_000) as {
        bad: number | null;
        ended: number | null;
      };
      const ended = r.ended ?? 0;
      if (!ended) return ok('no runs ended in 24 h', `warn > ${t.failRateWarn}%, fail > ${t.failRateFail}%`, null);
      const rate = ((r.bad ?? 0) / ended) * 100;
      const s: Status = rate > t.failRateFail ? 'fail' : rate > t.failRateWarn ? 'warn' : 'ok';
      return {
        status: s,
        value: `${formatPct(rate)} (${r.bad} of ${ended})`,
        threshold: `warn > ${t.failRateWarn}%, fail > ${t.failRateFail}%`,
        remedy: s === 'ok' ? '' : 'agentctl stats --since 24h',
        metric: rate,
      };
    },
  },
];

/** Every name's breaker record. */
function health(f: Facts): Array<{ name: string; h: NameHealth }> {
  if (!f.state) return [];
  return (f.state.db.prepare('SELECT name, value FROM health').all() as Array<{ name: string; value: string }>).map((r) => ({ name: r.name, h: JSON.parse(r.value) as NameHealth }));
}

/** spawn.refused events since `since` whose limit was the host cap. */
function refusedByHostCap(state: State, since: number): number {
  return (state.guard(() => state.db.prepare("SELECT COUNT(*) AS n FROM events WHERE kind = 'spawn.refused' AND ts >= ? AND json_extract(data, '$.limit_kind') = 'host'").get(since)) as { n: number })
    .n;
}

/** A name in a spawn loop: why, and its recent startup errors (newest first). */
interface SpawnLoop {
  readonly name: string;
  readonly why: string;
  readonly failures: ReadonlyArray<{ command: string; exit_code: number | null; signal: string | null; started_at: number; ended_at: number | null }>;
  readonly count: number;
}

/** Startup errors of one name in the runs table at most this far before its breaker opened. */
const SPAWN_LOOP_LOOKBACK_MS = 3_600_000; // the breaker's own horizon: restarts per rolling hour

/**
 * Names in a spawn loop: the breaker opened (or half-opened) after a startup error, or one name
 * had spawn_loop_errors startup errors in 10 min (a breaker reset by hand does not hide that).
 */
function spawnLoops(f: Facts, t: DoctorThresholds): SpawnLoop[] {
  const state = f.state!;
  const why = new Map<string, { why: string; since: number }>();
  for (const { name, h } of health(f)) {
    const mode = modeAt(h, f.now);
    if (mode === 'closed' || h.lastFailure !== 'startup_error') continue;
    const opened = typeof h.openedAt === 'number' ? h.openedAt : f.now;
    why.set(name, {
      why: `breaker ${mode === 'open' ? 'open' : 'half-open'} since ${new Date(opened).toISOString()}${h.reason ? ` (${printable(h.reason)})` : ''}`,
      since: opened - SPAWN_LOOP_LOOKBACK_MS,
    });
  }
  const counted = state.db
    .prepare("SELECT name, COUNT(*) AS n FROM runs WHERE failure = 'startup_error' AND started_at >= ? GROUP BY name HAVING n >= ? ORDER BY n DESC")
    .all(f.now - 600_000, t.spawnLoopErrors) as Array<{ name: string; n: number }>;
  for (const r of counted) if (!why.has(r.name)) why.set(r.name, { why: '', since: f.now - 600_000 });
  const recent = state.db.prepare(
    "SELECT command, exit_code, signal, started_at, ended_at FROM runs WHERE name = ? AND failure = 'startup_error' AND started_at >= ? ORDER BY started_at DESC LIMIT 100",
  );
  return [...why].map(([name, w]) => {
    const failures = recent.all(name, w.since) as SpawnLoop['failures'];
    return { name, why: w.why, failures, count: failures.length };
  });
}

function describeSpawnLoop(l: SpawnLoop): string {
  if (!l.failures.length) return `${printable(l.name)}: ${l.why || 'no startup errors on record'}`;
  const newest = l.failures[0]!;
  const oldest = l.failures[l.failures.length - 1]!;
  const span = formatDuration((newest.ended_at ?? newest.started_at) - oldest.started_at);
  const exits = l.failures.slice(0, 5).map((x) => (x.exit_code !== null ? String(x.exit_code) : x.signal !== null ? printable(x.signal) : '?'));
  // the counts first: the table cuts values at 70 characters
  return `${printable(l.name)}: ${l.count}${l.count === 100 ? '+' : ''} startup error${l.count === 1 ? '' : 's'} in ${span}, last exits ${exits.join(', ')}; ${l.why ? `${l.why}; ` : ''}last command: ${showArgv(parseCommand(newest.command), 120)}`;
}

/** The host breaker's kv record, checked like user input; undefined when it is not one. */
function hostBreakerRecord(text: string): { openedAt: number; notBefore: number; reason: string; failures: Array<{ name: string; run_id: string; exit_code: number | null }> } | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  const o = v as Record<string, unknown> | null;
  if (!o || typeof o !== 'object' || !Number.isFinite(o.openedAt) || !Number.isFinite(o.notBefore) || typeof o.reason !== 'string') return undefined;
  const failures = Array.isArray(o.failures)
    ? (o.failures as unknown[]).flatMap((x) => {
        const r = x as Record<string, unknown> | null;
        return r && typeof r === 'object' && typeof r.name === 'string' && typeof r.run_id === 'string'
          ? [{ name: r.name, run_id: r.run_id, exit_code: typeof r.exit_code === 'number' ? r.exit_code : null }]
          : [];
      })
    : [];
  return { openedAt: o.openedAt as number, notBefore: o.notBefore as number, reason: o.reason, failures };
}

/** PID files under pids/ whose recorded identity no longer runs. */
export function stalePidFiles(state: State): string[] {
  // unreadable, planted (a link), or naming a process that no longer runs
  return pidFiles(state.paths.pids)
    .filter((f) => !f.identity || !isSameProcess(f.identity))
    .map((f) => f.path);
}
