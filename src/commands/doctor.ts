/**
 * agentctl doctor: the host's health in one command. A table of checks (src/core/doctor), a
 * score, remedies; --fix applies the safe ones and checks again.
 *
 * Score: 10, minus 2 per failing check, minus 0.5 per warning, never below 0 (one decimal).
 */
import type { Ctx, Outcome, Ui } from '../core/ctx.js';
import { loadConfig } from '../core/config/load.js';
import type { LoadedConfig } from '../core/config/types.js';
import { agentChecks, type Check, type CheckResult, checks as checkTable, type Facts, serviceChecks, type Status } from '../core/doctor/checks.js';
import { FLEET_CHECK_IDS, fleetChecks, type FleetSeen } from '../core/doctor/fleet.js';
import type { FleetStatus } from '../core/fleet/fleet.js';
import { applyFixes } from '../core/doctor-fix.js';
import { EXIT, ExitError, UsageError } from '../core/errors.js';
import { checkOutputPath } from '../core/fsutil.js';
import { measure, type ThrottleReport } from '../core/measure.js';
import { listDetailed } from '../core/proc.js';
import { type Metric, writeMetricsFile } from '../core/prometheus.js';
import { printable } from '../core/text.js';
import type { State } from '../core/state.js';
import type { CommandDecl, OptionValues } from '../core/declaration.js';

export const declaration: CommandDecl = {
  name: 'doctor',
  description: 'check the host: load, memory, agents, duplicates, dead runs, spawn loops, breakers, ports, environments, services, config, state; a score 0-10 and remedies',
  options: [
    { flags: '--check <ids...>', help: 'run only these checks (e.g. host.load services.orchestrator)' },
    { flags: '--strict', help: 'warnings fail too' },
    { flags: '--fix', help: 'apply the safe remedies (record dead runs, drop stale PID files, env-gc without force), then check again' },
    { flags: '--fix-processes', help: 'with --fix, also end duplicate workers and reap overdue or hung runs' },
    { flags: '--prometheus <file>', help: 'write every check and the score in node_exporter textfile format, atomically', path: 'file' },
  ],
  examples: ['agentctl doctor', 'agentctl doctor --json | jq .score', 'agentctl doctor --strict && echo healthy', 'agentctl doctor --fix', 'agentctl doctor --check host.load host.memory'],
  exitCodes: '0 nothing failing (with --strict: no warnings either), 1 otherwise, 2 bad input.',
};

export interface CheckOut extends CheckResult {
  readonly id: string;
  readonly group: string;
  readonly title: string;
}

export interface DoctorResult {
  readonly score: number;
  readonly status: Status;
  readonly strict: boolean;
  readonly checks: readonly CheckOut[];
  /** with [fleet], when PostgreSQL answered: this host's id and the leases per group and host */
  readonly fleet?: { readonly host_id: string; readonly groups: FleetStatus['groups'] };
  readonly fix?: { readonly actions: readonly string[]; readonly before: { readonly score: number; readonly checks: readonly CheckOut[] } };
}

/** The score formula, documented in docs/doctor.md. */
export function score(results: ReadonlyArray<{ status: Status }>): number {
  const fails = results.filter((r) => r.status === 'fail').length;
  const warns = results.filter((r) => r.status === 'warn').length;
  return Math.max(0, Math.round((10 - 2 * fails - 0.5 * warns) * 10) / 10);
}

function overall(results: ReadonlyArray<{ status: Status }>, strict: boolean): Status {
  if (results.some((r) => r.status === 'fail')) return 'fail';
  if (results.some((r) => r.status === 'warn')) return strict ? 'fail' : 'warn';
  return 'ok';
}

interface Gathered {
  facts: Facts;
  list: Check[];
  fleet: FleetSeen;
}

async function gather(ctx: Ctx): Promise<Gathered> {
  let config: LoadedConfig | undefined;
  let configError: string | undefined;
  try {
    config = ctx.config();
  } catch (err) {
    if (!(err instanceof ExitError) || err.exitCode !== EXIT.config) throw err;
    configError = err.message;
  }
  const effective = config ?? loadConfig({ defaultsOnly: true });
  let state: State | undefined;
  let stateError: string | undefined;
  try {
    state = ctx.state();
  } catch (err) {
    if (!(err instanceof ExitError)) throw err;
    stateError = err.message;
  }
  // one walk of /proc: the checks and the throttle reading's agent counts use the same table
  const procs = listDetailed();
  let report: ThrottleReport | undefined;
  if (state) {
    report = await measure({ now: ctx.now, sleep: ctx.sleep, env: ctx.env, sampler: ctx.sampler, listProcesses: async () => procs }, effective.config, state, 'doctor');
  }
  const facts: Facts = { now: ctx.now(), config: effective, configError, state, stateError, stateDir: ctx.stateDir().dir, report, procs, env: ctx.env };
  const fleet: FleetSeen = {};
  return { facts, list: [...checkTable(effective.config.doctor), ...serviceChecks(facts), ...agentChecks(facts), ...fleetChecks(facts, fleet)], fleet };
}

async function runChecks(list: readonly Check[], facts: Facts, only: Set<string> | undefined): Promise<CheckOut[]> {
  const out: CheckOut[] = [];
  for (const c of list) {
    if (only && !only.has(c.id)) continue;
    let r: CheckResult;
    try {
      r = await c.run(facts);
    } catch (err) {
      r = { status: 'fail', value: `check failed: ${(err as Error).message}`, threshold: '-', remedy: '', metric: null };
    }
    out.push({ id: c.id, group: c.group, title: c.title, ...r });
  }
  return out;
}

const STATUS_VALUE: Record<Status, number> = { ok: 0, warn: 1, fail: 2 };

export function prometheusMetrics(r: DoctorResult, nowMs: number): Metric[] {
  return [
    { name: 'agentctl_doctor_score', help: 'Health score 0-10 (10 minus 2 per failing check, 0.5 per warning).', type: 'gauge', samples: [{ value: r.score }] },
    {
      name: 'agentctl_doctor_check_status',
      help: 'Check status: 0 ok, 1 warn, 2 fail.',
      type: 'gauge',
      samples: r.checks.map((c) => ({ labels: { id: c.id, group: c.group }, value: STATUS_VALUE[c.status] })),
    },
    {
      name: 'agentctl_doctor_check_value',
      help: 'The value each check measured, where it is a number.',
      type: 'gauge',
      samples: r.checks.filter((c) => typeof c.metric === 'number').map((c) => ({ labels: { id: c.id }, value: c.metric! })),
    },
    ...(r.fleet
      ? [
          {
            name: 'agentctl_fleet_leases',
            help: 'Unexpired fleet leases per group and host, as PostgreSQL holds them.',
            type: 'gauge' as const,
            samples: r.fleet.groups.flatMap((g) => Object.entries(g.hosts).map(([host, n]) => ({ labels: { group: g.group, host }, value: n }))),
          },
        ]
      : []),
    {
      name: 'agentctl_last_run_timestamp_seconds',
      help: 'When this agentctl command last ran (unix seconds).',
      type: 'gauge',
      samples: [{ labels: { command: 'doctor' }, value: Math.floor(nowMs / 1000) }],
    },
  ];
}

/** `1 warning`, `2 warnings` */
const plural = (n: number, noun: string): string => `${n} ${noun}${n === 1 ? '' : 's'}`;
export async function run(opts: OptionValues, _args: readonly string[], ctx: Ctx): Promise<Outcome<DoctorResult>> {
  const strict = Boolean(opts.strict);
  const prom = opts.prometheus !== undefined ? String(opts.prometheus) : undefined;
  if (prom !== undefined) checkOutputPath(prom, '--prometheus');
  const requested = (opts.check as string[] | undefined) ?? undefined;
  // unknown check ids are bad input, known before anything is touched
  if (requested) {
    const known = new Set(checkTable(loadConfig({ defaultsOnly: true }).config.doctor).map((c) => c.id));
    let services: string[] = [];
    try {
      const c = ctx.config().config;
      services = [...c.services.map((s) => `services.${s.name}`), ...c.fleetAgents.map((s) => `agent.${s.name}`)];
    } catch {
      /* a broken config shows up in config.valid */
    }
    for (const s of services) known.add(s);
    for (const id of FLEET_CHECK_IDS) known.add(id);
    const bad = requested.filter((id) => !known.has(id));
    if (bad.length) throw new UsageError(`--check: unknown check ${bad.map((b) => JSON.stringify(b)).join(', ')}; known: ${[...known].join(', ')}`);
  }
  const only = requested ? new Set(requested) : undefined;
  let g = await gather(ctx);
  let results = await runChecks(g.list, g.facts, only);
  let fix: DoctorResult['fix'];
  if (opts.fix || opts.fixProcesses) {
    const before = { score: score(results), checks: results };
    const actions = await applyFixes(ctx, g.facts, Boolean(opts.fixProcesses));
    g = await gather(ctx);
    results = await runChecks(g.list, g.facts, only);
    fix = { actions, before };
  }
  const seen = g.fleet.status;
  const result: DoctorResult = {
    score: score(results),
    status: overall(results, strict),
    strict,
    checks: results,
    ...(seen ? { fleet: { host_id: seen.host_id, groups: seen.groups } } : {}),
    ...(fix ? { fix } : {}),
  };
  if (prom !== undefined) {
    try {
      writeMetricsFile(prom, prometheusMetrics(result, ctx.now()));
    } catch (err) {
      throw new ExitError(EXIT.failed, `--prometheus: cannot write ${prom}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'write_failed');
    }
  }
  g.facts.state?.write(() => recordRun(g.facts.state!, result, results));
  const failing = result.status === 'fail';
  return { data: result, exitCode: failing ? EXIT.failed : EXIT.ok };
}

/** kv key: the checks failing at the last doctor run that ran them (doctor.fail fires on the edge). */
const FAILING_KEY = 'doctor.failing';

/**
 * `doctor.run` with the score; `doctor.fail` for each check failing now that was not at the
 * last run that ran it, `doctor.recovered` for each that was and passes now. A check failing
 * run after run is told once, as a pager expects from cron's doctor every minute; a check this
 * run did not look at (--check) keeps what the last one said.
 */
function recordRun(state: State, result: DoctorResult, results: readonly CheckOut[]): void {
  state.event({
    command: 'doctor',
    kind: 'doctor.run',
    reason: `score ${result.score}/10: ${results.filter((r) => r.status === 'fail').length} failing, ${plural(results.filter((r) => r.status === 'warn').length, 'warning')}`,
    data: { score: result.score },
  });
  const stored = state.getKv<unknown>(FAILING_KEY)?.value;
  const before = new Set(Array.isArray(stored) ? stored.filter((x): x is string => typeof x === 'string') : []);
  const ran = new Set(results.map((r) => r.id));
  for (const c of results) {
    if (c.status === 'fail' && !before.has(c.id)) {
      state.event({
        command: 'doctor',
        kind: 'doctor.fail',
        subject: c.id,
        reason: `${c.title}: ${c.value} (${c.threshold})`,
        data: { check: c.id, value: c.value, threshold: c.threshold, remedy: c.remedy },
      });
    } else if (c.status !== 'fail' && before.has(c.id)) {
      state.event({ command: 'doctor', kind: 'doctor.recovered', subject: c.id, reason: `${c.title}: ${c.value} (${c.status})`, data: { check: c.id, value: c.value, status: c.status } });
    }
  }
  const now = [...before].filter((id) => !ran.has(id)).concat(results.filter((r) => r.status === 'fail').map((r) => r.id));
  state.setKv(FAILING_KEY, now.sort());
}

const MARK: Record<Status, string> = { ok: '✔', warn: '!', fail: '✖' };

function table(checks: readonly CheckOut[], ui: Ui): string {
  const paint = (s: Status, text: string) => (s === 'ok' ? ui.c.green(text) : s === 'warn' ? ui.c.yellow(text) : ui.c.red(text));
  return ui.table(
    ['', 'check', 'value', 'threshold', 'remedy'],
    // the check's id is the one --check takes; its title is in --json and docs/doctor.md
    checks.map((c) => [paint(c.status, MARK[c.status]), c.id, printable(c.value, 70), c.threshold, c.remedy]),
    { value: 'wrap', threshold: 'wrap', remedy: 'wrap' },
  );
}

export function render(r: DoctorResult, ui: Ui): string {
  const lines: string[] = [];
  if (r.fix) {
    lines.push(`before --fix: score ${r.fix.before.score}/10`, ...r.fix.actions.map((a) => ui.wrap(`  fixed: ${printable(a)}`, 9)), '');
  }
  lines.push(table(r.checks, ui));
  const fails = r.checks.filter((c) => c.status === 'fail').length;
  const warns = r.checks.filter((c) => c.status === 'warn').length;
  const head = `health score ${r.score}/10: ${fails} failing, ${plural(warns, 'warning')}, ${r.checks.length - fails - warns} ok`;
  lines.push(r.status === 'ok' ? ui.c.green(head) : r.status === 'warn' ? ui.c.yellow(head) : ui.c.red(head));
  return lines.join('\n');
}
