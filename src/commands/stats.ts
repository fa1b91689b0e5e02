/** agentctl stats: per name, how runs went: success rate, duration percentiles, failures by type. */
import type { Ctx, Outcome, Ui } from '../core/ctx.js';
import { checkName } from '../core/names.js';
import { reconcileAll } from '../core/runs/reconcile.js';
import { parseSince } from '../core/since.js';
import type { State } from '../core/state.js';
import { formatBytes, formatDuration } from '../core/units.js';
import type { CommandDecl, OptionValues } from '../core/declaration.js';

export const declaration: CommandDecl = {
  name: 'stats',
  description: 'per name: runs, success rate, p50/p95/p99 duration (last 1,000 successful runs), failures by type',
  options: [
    { flags: '--since <duration>', help: 'only runs started since (e.g. 24h) or an ISO time' },
    { flags: '--name <name>', help: 'only this name' },
  ],
  examples: ['agentctl stats', 'agentctl stats --since 24h --json'],
};

/** Percentiles come from at most this many recent successful runs per name (incident 4). */
const PERCENTILE_WINDOW = 1000;

export interface NameStats {
  readonly name: string;
  readonly runs: number;
  readonly succeeded: number;
  readonly failed: number;
  /** 0..1, of runs that ended (stopped and lost runs excluded) */
  readonly success_rate: number | null;
  readonly p50_ms: number | null;
  readonly p95_ms: number | null;
  readonly p99_ms: number | null;
  /** CPU time of the run's tree, nearest-rank p50/p95 of the newest 1,000 ended runs that have one */
  readonly cpu_p50_ms: number | null;
  readonly cpu_p95_ms: number | null;
  /** peak RSS of the run's process, p50/p95 of the newest 1,000 ended runs that have one */
  readonly peak_rss_p50_bytes: number | null;
  readonly peak_rss_p95_bytes: number | null;
  readonly failures: Record<string, number>;
  readonly running: number;
  readonly last_started: string | null;
}

export interface StatsResult {
  readonly since: string | null;
  readonly names: readonly NameStats[];
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** p50 and p95 of a usage column over the newest ended runs of a name that have a reading. */
function usagePercentiles(db: State['db'], name: string, since: number, column: 'cpu_ms' | 'peak_rss_bytes'): [number | null, number | null] {
  const values = (
    db
      .prepare(`SELECT ${column} AS v FROM runs WHERE name = ? AND started_at >= ? AND ended_at IS NOT NULL AND ${column} IS NOT NULL ORDER BY started_at DESC LIMIT ?`)
      .all(name, since, PERCENTILE_WINDOW) as Array<{ v: number }>
  )
    .map((r) => r.v)
    .sort((a, b) => a - b);
  return [percentile(values, 50), percentile(values, 95)];
}

export async function run(opts: OptionValues, _args: readonly string[], ctx: Ctx): Promise<Outcome<StatsResult>> {
  const since = opts.since === undefined ? undefined : parseSince(String(opts.since), ctx.now());
  const only = opts.name === undefined ? undefined : checkName(String(opts.name), '--name');
  const state = ctx.state();
  reconcileAll(state, ctx.config(), ctx.now(), 'stats'); // record runs that ended since anyone looked
  const db = state.db;
  const names = state.guard(
    () => db.prepare(`SELECT DISTINCT name FROM runs WHERE started_at >= ? ${only ? 'AND name = ?' : ''} ORDER BY name`).all(...[since ?? 0, ...(only ? [only] : [])]) as Array<{ name: string }>,
  );
  const out: NameStats[] = names.map(({ name }) => {
    const counts = db
      .prepare(
        `SELECT COUNT(*) AS runs,
                SUM(state = 'exited') AS ok,
                SUM(state = 'failed') AS bad,
                SUM(ended_at IS NULL) AS running,
                MAX(started_at) AS last
         FROM runs WHERE name = ? AND started_at >= ?`,
      )
      .get(name, since ?? 0) as { runs: number; ok: number; bad: number; running: number; last: number };
    const durations = (
      db
        .prepare("SELECT ended_at - started_at AS d FROM runs WHERE name = ? AND state = 'exited' AND started_at >= ? ORDER BY started_at DESC LIMIT ?")
        .all(name, since ?? 0, PERCENTILE_WINDOW) as Array<{ d: number }>
    )
      .map((r) => r.d)
      .sort((a, b) => a - b);
    const failures = Object.fromEntries(
      (
        db.prepare('SELECT failure, COUNT(*) AS n FROM runs WHERE name = ? AND failure IS NOT NULL AND started_at >= ? GROUP BY failure').all(name, since ?? 0) as Array<{ failure: string; n: number }>
      ).map((r) => [r.failure, r.n]),
    );
    const ended = counts.ok + counts.bad;
    const [cpu50, cpu95] = usagePercentiles(db, name, since ?? 0, 'cpu_ms');
    const [rss50, rss95] = usagePercentiles(db, name, since ?? 0, 'peak_rss_bytes');
    return {
      name,
      runs: counts.runs,
      succeeded: counts.ok,
      failed: counts.bad,
      success_rate: ended ? Math.round((counts.ok / ended) * 1000) / 1000 : null,
      p50_ms: percentile(durations, 50),
      p95_ms: percentile(durations, 95),
      p99_ms: percentile(durations, 99),
      cpu_p50_ms: cpu50,
      cpu_p95_ms: cpu95,
      peak_rss_p50_bytes: rss50,
      peak_rss_p95_bytes: rss95,
      failures,
      running: counts.running,
      last_started: counts.last ? new Date(counts.last).toISOString() : null,
    };
  });
  return { data: { since: since === undefined ? null : new Date(since).toISOString(), names: out }, alwaysPrint: true };
}

const d = (ms: number | null) => (ms === null ? '-' : formatDuration(ms));
const b = (n: number | null) => (n === null ? '-' : formatBytes(n));
/** "p50/p95", or '-' when the name has no reading */
const pair = (p50: number | null, p95: number | null, f: (v: number | null) => string) => (p50 === null ? '-' : `${f(p50)}/${f(p95)}`);

export function render(r: StatsResult, ui: Ui): string {
  if (r.names.length === 0) return `no runs${r.since ? ` since ${r.since}` : ''}`;
  return ui.table(
    ['name', 'runs', 'ok', 'failed', 'success', 'p50', 'p95', 'p99', 'cpu p50/95', 'rss p50/95', 'failures', 'running'],
    r.names.map((n) => [
      n.name,
      n.runs,
      n.succeeded,
      n.failed,
      n.success_rate === null ? '-' : `${Math.round(n.success_rate * 100)}%`,
      d(n.p50_ms),
      d(n.p95_ms),
      d(n.p99_ms),
      pair(n.cpu_p50_ms, n.cpu_p95_ms, d),
      pair(n.peak_rss_p50_bytes, n.peak_rss_p95_bytes, b),
      Object.entries(n.failures)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ') || '-',
      n.running,
    ]),
    // on a narrow terminal p99 and ok leave first (p95 and runs - failed say nearly as much),
    // then what the runs used (--wide or --json have them)
    { p99: 'drop', ok: 'drop', 'rss p50/95': 'drop', 'cpu p50/95': 'drop', name: 'cut-last', failures: 'wrap' },
  );
}
