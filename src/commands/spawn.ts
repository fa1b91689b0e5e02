/** agentctl spawn: start a worker only when it is safe. */
import { basename } from 'node:path';
import type { Ctx, Outcome, Ui } from '../core/ctx.js';
import { EXIT, UsageError } from '../core/errors.js';
import { fleetCap, noteFleetSync } from '../core/fleet/fleet.js';
import { checkName } from '../core/names.js';
import { programName } from '../core/proc.js';
import { type RestartTerms, spawnDeps } from '../core/spawn/deps.js';
import { RESTART_POLICIES } from '../core/restart.js';
import { isRedacted, redactArgv } from '../core/text.js';
import { spawnJson, type SpawnOutput } from '../core/spawn/result.js';
import { spawnRun } from '../core/spawn/spawn.js';
import type { EachOutput } from '../core/spawn/each.js';
import { formatDuration, MAX_TIMER_MS, parseDuration, parseIntInRange, parseSize } from '../core/units.js';
import type { CommandDecl, OptionValues } from '../core/declaration.js';

export const declaration: CommandDecl = {
  name: 'spawn',
  description: 'start a worker only when it is safe: breaker, singleton, cooldown, rate limit, dependencies, concurrency cap',
  usage: '[options] -- CMD [ARGS...]',
  args: [{ name: '[command...]', help: 'the command to run (after --)' }],
  options: [
    { flags: '--name <name>', help: 'run name; one instance per name (default: the program the command runs, e.g. worker.py for python3 worker.py)' },
    { flags: '--group <group>', help: 'concurrency group the cap applies to', default: 'default' },
    { flags: '--priority <n>', help: 'queue priority: 1 critical, 2 important, 3 normal', default: '3' },
    { flags: '--max <n>', help: 'at most n live runs in the group (also capped by the throttle level)' },
    { flags: '--requires <names...>', help: 'names that must be running and healthy (exit 69 otherwise)' },
    { flags: '--if-not-running', help: 'exit 0 when the name is already running' },
    { flags: '-d, --detach', help: 'return at once; exit code, duration and failure type are still recorded' },
    // --wait alone: an hour is longer than any sane queue
    { flags: '--wait [duration]', help: 'queue for a slot instead of refusing; exit 75 when it runs out', preset: '1h' },
    { flags: '--timeout <duration>', help: 'TERM the process group after this long, KILL after --kill-grace' },
    { flags: '--kill-grace <duration>', help: 'time between TERM and KILL', configKey: 'spawn.kill_grace' },
    { flags: '--memory-max <size>', help: 'memory limit (cgroup MemoryMax, else address space), e.g. 512M' },
    { flags: '--cpu-time <duration>', help: 'CPU time limit, e.g. 1h' },
    { flags: '--nice <n>', help: 'run at this niceness (0-19)' },
    { flags: '--port <n>', help: 'lease n ports for the run: PORT, PORT_1..PORT_n and AGENTCTL_PORTS in its environment' },
    { flags: '--env <name>', help: 'run inside an environment: its ports as PORT..., AGENTCTL_ENV=name' },
    { flags: '--each [file]', help: 'a batch: run each line of FILE (- for stdin) as sh -c LINE, one registered run per line, through one admission loop', preset: '-', path: 'file' },
    { flags: '-0, --null', help: 'with --each: the command lines are NUL-separated (a command may hold newlines)' },
    { flags: '--joblog <file>', help: "with --each: write GNU parallel's joblog to FILE as jobs end", path: 'file' },
    { flags: '--restart <policy>', help: 'with -d: when the run ends, its supervisor starts it again after the backoff, through admission: on-failure or always' },
    { flags: '--retries <n>', help: 'with --each: run a failed job up to n more times; with --restart: give up into the DLQ after n failed restarts in a row' },
    { flags: '--halt-on-failure <n>', help: 'with --each: after n failed jobs start no more; running ones finish' },
  ],
  examples: [
    'agentctl spawn --name consult-42 --group consult --max 3 -- claude --print "review PR 42"',
    'agentctl spawn -d --name auto-confirm --if-not-running -- python3 auto_confirm_worker_v2.py --daemon',
    'agentctl spawn --wait 10m --priority 1 --group batch --max 3 -- ./job.sh',
    'agentctl spawn -d --timeout 60s --memory-max 2G --name assigner -- python3 assigner.py',
    'agentctl spawn -d --restart on-failure --retries 5 --name indexer -- python3 indexer.py',
    'agentctl spawn --requires orchestrator --name worker-1 -- node worker.js',
    'agentctl spawn --each jobs.txt --group batch --max 3 --joblog jobs.log',
    "find . -name '*.py' -print0 | xargs -0 printf 'ruff check %q\\0' | agentctl spawn --each - -0 --max 2 --retries 1",
  ],
  exitCodes:
    "with --each: 0 when every job succeeded, 1 otherwise, 130/143 when stopped by INT/TERM; the child's own code in the foreground (128+n for signal n); 75 no slot, cooldown, backoff, rate limit or --wait ran out; 69 circuit open or a dependency unhealthy.",
};

export async function run(opts: OptionValues, args: readonly string[], ctx: Ctx): Promise<Outcome<SpawnOutput | EachOutput>> {
  if (opts.each !== undefined) return runBatch(opts, args, ctx);
  for (const f of ['null', 'joblog', 'retries', 'haltOnFailure'] as const) {
    if (f === 'retries' && opts.restart !== undefined) continue;
    if (opts[f] !== undefined && opts[f] !== false)
      throw new UsageError(`${EACH_FLAGS[f]}: only with --each FILE${f === 'retries' ? ' or with -d --restart' : ''}; give the command lines with --each`);
  }
  const command = [...args];
  if (command.length === 0 || command[0] === '') throw new UsageError('spawn: missing command; give it after --, e.g. agentctl spawn --name worker -- python3 worker.py');
  const restart = restartTerms(opts, command);
  // default name: the program the command runs (the script, not the interpreter)
  const name = checkName(
    opts.name !== undefined ? String(opts.name) : programName(command) || basename(command[0]!),
    opts.name !== undefined ? '--name' : 'spawn: the name taken from the command (give --name)',
  );
  const terms = runTerms(opts);
  const { max } = terms;
  // one instance per name: without --name every run of this command shares one name, so --max above 1 never fills
  if (max !== undefined && max > 1 && opts.name === undefined) {
    ctx.note(`agentctl: warning: --max ${max} without --name: every run of this command is named ${name}, and a name runs once at a time; give each run its own --name (e.g. --name ${name}-$i)`);
  }
  const waitMs = opts.wait === undefined ? undefined : parseDuration(String(opts.wait), '--wait');
  const ports = opts.port !== undefined ? parseIntInRange(String(opts.port), '--port', 1, 100) : undefined;
  const envName = opts.env !== undefined ? checkName(String(opts.env), '--env') : undefined;
  const loaded = ctx.config();
  const killGraceMs = opts.killGrace !== undefined ? parseDuration(String(opts.killGrace), '--kill-grace') : loaded.config.spawn.killGraceMs;
  ctx.state(); // open (and migrate) before admission

  const result = await spawnRun(
    spawnDeps(ctx, loaded, 'spawn', ctx.globals.json ? undefined : ({ runId, pid }) => !opts.detach && ctx.note(`agentctl: started ${name} (run ${runId}, PID ${pid})`)),
    {
      ...terms,
      name,
      ifNotRunning: Boolean(opts.ifNotRunning),
      detach: Boolean(opts.detach),
      waitMs,
      killGraceMs,
      command,
      cwd: ctx.cwd,
      ports,
      env: envName,
      restart,
    },
    ctx.globals.json,
  );
  // a fleet-capped spawn renewed this host's leases when it asked the fleet; any other does it here
  if (fleetCap(loaded.config, terms.group) === undefined) await noteFleetSync(ctx, ctx.state(), loaded, ctx.now());
  const data = spawnJson(result);
  switch (result.outcome) {
    case 'refused':
      return { data, exitCode: result.decision.exitCode, message: result.decision.message };
    case 'already_running':
    case 'started':
      return { data, exitCode: EXIT.ok };
    case 'finished':
      return {
        data,
        exitCode: result.passThrough,
        ...(result.failure
          ? {
              message: `${name} ${result.timedOut ? 'timed out' : 'failed'} (${result.failure}): ${result.signal ? `ended by ${result.signal}` : `exit ${result.exitCode}`} after ${formatDuration(result.durationMs)}`,
            }
          : {}),
      };
  }
}

export function render(r: SpawnOutput | EachOutput, ui: Ui): string {
  switch (r.outcome) {
    case 'batch':
      return ''; // the jobs spoke for themselves; the summary line goes to stderr
    case 'refused':
    case 'finished':
      return ''; // the refusal or failure line goes to stderr; a foreground child spoke for itself
    case 'already_running':
      return `${ui.c.dim('already running:')} run ${r.run_id}${r.pid !== null ? `, PID ${r.pid}` : ''}`;
    case 'started':
      return `started ${ui.c.bold(r.name)}: run ${r.run_id}, PID ${r.pid}${r.trial ? ' (trial run: breaker half-open)' : ''}\nlog: ${r.log_path}`;
  }
}

/** The terms a run is admitted and limited on, shared by a single spawn and a batch's jobs. */
function runTerms(opts: OptionValues) {
  const group = checkName(String(opts.group), '--group');
  const priority = parseIntInRange(String(opts.priority), '--priority', 1, 3);
  const max = opts.max !== undefined ? parseIntInRange(String(opts.max), '--max', 1, 10_000) : undefined;
  const requires = ((opts.requires as string[] | undefined) ?? []).map((r) => checkName(r, '--requires'));
  const timeoutMs = opts.timeout !== undefined ? parseDuration(String(opts.timeout), '--timeout', MAX_TIMER_MS) : undefined; // a timer ends the child
  if (timeoutMs === 0) throw new UsageError('--timeout: expected a duration above 0');
  const memoryMax = opts.memoryMax !== undefined ? parseSize(String(opts.memoryMax), '--memory-max') : undefined;
  if (memoryMax !== undefined && memoryMax < 1024 * 1024) throw new UsageError(`--memory-max: ${String(opts.memoryMax)} is too small; expected at least 1M`);
  const cpuTimeMs = opts.cpuTime !== undefined ? parseDuration(String(opts.cpuTime), '--cpu-time') : undefined;
  if (cpuTimeMs !== undefined && cpuTimeMs < 1000) throw new UsageError('--cpu-time: expected at least 1s (the kernel counts whole seconds)');
  const nice = opts.nice !== undefined ? parseIntInRange(String(opts.nice), '--nice', 0, 19) : undefined;
  return { group, priority, max, requires, timeoutMs, limits: { memoryMax, cpuTimeSec: cpuTimeMs !== undefined ? Math.ceil(cpuTimeMs / 1000) : undefined, nice } };
}

/** -d --restart POLICY [--retries N]: the run's restart policy, checked before anything starts. */
function restartTerms(opts: OptionValues, command: readonly string[]): RestartTerms | undefined {
  if (opts.restart === undefined) return undefined;
  const policy = String(opts.restart);
  if (!(RESTART_POLICIES as readonly string[]).includes(policy)) throw new UsageError(`--restart: expected on-failure or always, got ${JSON.stringify(policy)}`);
  if (!opts.detach) throw new UsageError("--restart: only with -d; a detached run's supervisor restarts it (in the foreground, rerun the command)");
  // a restart is rebuilt from the run's row, which never holds a secret
  if (isRedacted(redactArgv(command))) throw new UsageError('--restart: the command holds a secret, which agentctl never stores, so it cannot restart it; pass the secret in the environment');
  const retries = opts.retries !== undefined ? parseIntInRange(String(opts.retries), '--retries', 0, 1_000_000) : null;
  return { policy: policy as RestartTerms['policy'], retries, attempt: 0, failures: 0 };
}

const EACH_FLAGS = { null: '-0', joblog: '--joblog', retries: '--retries', haltOnFailure: '--halt-on-failure' } as const;

/** Flags of a single run that a batch does not take (each job is its own foreground run). */
const NOT_WITH_EACH = { detach: '-d', wait: '--wait', ifNotRunning: '--if-not-running', port: '--port', env: '--env', restart: '--restart' } as const;

/** spawn --each: the batch's terms, its lines, then the admission loop (core/spawn/each.ts). */
async function runBatch(opts: OptionValues, args: readonly string[], ctx: Ctx): Promise<Outcome<EachOutput>> {
  if (args.length) throw new UsageError('--each: the commands come from the file, one per line; give no command after --');
  for (const [k, flag] of Object.entries(NOT_WITH_EACH)) if (opts[k] !== undefined && opts[k] !== false) throw new UsageError(`${flag}: not with --each; each job runs in the foreground of the batch`);
  const terms = runTerms(opts);
  const retries = opts.retries !== undefined ? parseIntInRange(String(opts.retries), '--retries', 0, 100) : 0;
  const haltOnFailure = opts.haltOnFailure !== undefined ? parseIntInRange(String(opts.haltOnFailure), '--halt-on-failure', 1, 1_000_000) : undefined;
  // the batch's code loads only for --each: a single spawn does not pay for it
  const [{ runEach }, { readJobLines }, { Joblog }] = await Promise.all([import('../core/spawn/each.js'), import('../core/spawn/each/input.js'), import('../core/spawn/each/joblog.js')]);
  const lines = await readJobLines(String(opts.each), Boolean(opts.null));
  // job k is PREFIX-k: the prefix must leave room for the largest k
  const prefix = opts.name !== undefined ? String(opts.name) : `each-${ctx.now().toString(36)}`;
  checkName(`${prefix}-${lines.length}`, opts.name !== undefined ? `--name (jobs are named ${prefix}-1..${lines.length})` : '--each');
  const loaded = ctx.config();
  // the batch's loop takes local slots only: a fleet-capped group would go around the fleet's cap
  if (fleetCap(loaded.config, terms.group) !== undefined)
    throw new UsageError(`--each: group ${terms.group} has a fleet-wide cap ([fleet.caps]); batches do not take fleet leases yet: use another group, or spawn each job with --wait`);
  const killGraceMs = opts.killGrace !== undefined ? parseDuration(String(opts.killGrace), '--kill-grace') : loaded.config.spawn.killGraceMs;
  const joblog = opts.joblog !== undefined ? new Joblog(String(opts.joblog)) : undefined;
  ctx.state(); // open (and migrate) before admission
  try {
    const data = await runEach(spawnDeps(ctx, loaded, 'spawn'), {
      base: { ...terms, ifNotRunning: false, detach: false, batch: true, killGraceMs, cwd: ctx.cwd },
      prefix,
      lines,
      retries,
      haltOnFailure,
      joblog,
      // under --json stdout carries our one document: the jobs' output goes to stderr
      out: ctx.globals.json ? process.stderr : process.stdout,
      err: process.stderr,
      note: (line) => ctx.note(line),
    });
    if (data.exit_code === 0) ctx.note(`agentctl: ${data.summary}`);
    return { data, exitCode: data.exit_code, message: data.summary };
  } finally {
    joblog?.close();
  }
}
