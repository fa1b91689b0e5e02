/** agentctl spawn: start a worker only when it is safe. */
import { basename } from 'node:path';
import type { Ctx, Outcome, Ui } from '../core/ctx.js';
import { EXIT, UsageError } from '../core/errors.js';
import { fleetCap, noteFleetSync } from '../core/fleet/fleet.js';
import { checkName } from '../core/names.js';
import { programName } from '../core/proc.js';
import { spawnDeps } from '../core/spawn/deps.js';
import { spawnJson, type SpawnOutput } from '../core/spawn/result.js';
import { spawnRun } from '../core/spawn/spawn.js';
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
  ],
  examples: [
    'agentctl spawn --name consult-42 --group consult --max 3 -- claude --print "review PR 42"',
    'agentctl spawn -d --name auto-confirm --if-not-running -- python3 auto_confirm_worker_v2.py --daemon',
    'agentctl spawn --wait 10m --priority 1 --group batch --max 3 -- ./job.sh',
    'agentctl spawn -d --timeout 60s --memory-max 2G --name assigner -- python3 assigner.py',
    'agentctl spawn --requires orchestrator --name worker-1 -- node worker.js',
  ],
  exitCodes: "the child's own code in the foreground (128+n for signal n); 75 no slot, cooldown, backoff, rate limit or --wait ran out; 69 circuit open or a dependency unhealthy.",
};

export async function run(opts: OptionValues, args: readonly string[], ctx: Ctx): Promise<Outcome<SpawnOutput>> {
  const command = [...args];
  if (command.length === 0 || command[0] === '') throw new UsageError('spawn: missing command; give it after --, e.g. agentctl spawn --name worker -- python3 worker.py');
  // default name: the program the command runs (the script, not the interpreter)
  const name = checkName(
    opts.name !== undefined ? String(opts.name) : programName(command) || basename(command[0]!),
    opts.name !== undefined ? '--name' : 'spawn: the name taken from the command (give --name)',
  );
  const group = checkName(String(opts.group), '--group');
  const priority = parseIntInRange(String(opts.priority), '--priority', 1, 3);
  const max = opts.max !== undefined ? parseIntInRange(String(opts.max), '--max', 1, 10_000) : undefined;
  // one instance per name: without --name every run of this command shares one name, so --max above 1 never fills
  if (max !== undefined && max > 1 && opts.name === undefined) {
    ctx.note(`agentctl: warning: --max ${max} without --name: every run of this command is named ${name}, and a name runs once at a time; give each run its own --name (e.g. --name ${name}-$i)`);
  }
  const requires = ((opts.requires as string[] | undefined) ?? []).map((r) => checkName(r, '--requires'));
  const waitMs = opts.wait === undefined ? undefined : parseDuration(String(opts.wait), '--wait');
  const timeoutMs = opts.timeout !== undefined ? parseDuration(String(opts.timeout), '--timeout', MAX_TIMER_MS) : undefined; // a timer ends the child
  if (timeoutMs === 0) throw new UsageError('--timeout: expected a duration above 0');
  const memoryMax = opts.memoryMax !== undefined ? parseSize(String(opts.memoryMax), '--memory-max') : undefined;
  if (memoryMax !== undefined && memoryMax < 1024 * 1024) throw new UsageError(`--memory-max: ${String(opts.memoryMax)} is too small; expected at least 1M`);
  const cpuTimeMs = opts.cpuTime !== undefined ? parseDuration(String(opts.cpuTime), '--cpu-time') : undefined;
  if (cpuTimeMs !== undefined && cpuTimeMs < 1000) throw new UsageError('--cpu-time: expected at least 1s (the kernel counts whole seconds)');
  const nice = opts.nice !== undefined ? parseIntInRange(String(opts.nice), '--nice', 0, 19) : undefined;
  const ports = opts.port !== undefined ? parseIntInRange(String(opts.port), '--port', 1, 100) : undefined;
  const envName = opts.env !== undefined ? checkName(String(opts.env), '--env') : undefined;
  const loaded = ctx.config();
  const killGraceMs = opts.killGrace !== undefined ? parseDuration(String(opts.killGrace), '--kill-grace') : loaded.config.spawn.killGraceMs;
  ctx.state(); // open (and migrate) before admission

  const result = await spawnRun(
    spawnDeps(ctx, loaded, 'spawn', ctx.globals.json ? undefined : ({ runId, pid }) => !opts.detach && ctx.note(`agentctl: started ${name} (run ${runId}, PID ${pid})`)),
    {
      name,
      group,
      priority,
      max,
      requires,
      ifNotRunning: Boolean(opts.ifNotRunning),
      detach: Boolean(opts.detach),
      waitMs,
      timeoutMs,
      killGraceMs,
      limits: { memoryMax, cpuTimeSec: cpuTimeMs !== undefined ? Math.ceil(cpuTimeMs / 1000) : undefined, nice },
      command,
      cwd: ctx.cwd,
      ports,
      env: envName,
    },
    ctx.globals.json,
  );
  // a fleet-capped spawn renewed this host's leases when it asked the fleet; any other does it here
  if (fleetCap(loaded.config, group) === undefined) await noteFleetSync(ctx, ctx.state(), loaded, ctx.now());
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

export function render(r: SpawnOutput, ui: Ui): string {
  switch (r.outcome) {
    case 'refused':
    case 'finished':
      return ''; // the refusal or failure line goes to stderr; a foreground child spoke for itself
    case 'already_running':
      return `${ui.c.dim('already running:')} run ${r.run_id}${r.pid !== null ? `, PID ${r.pid}` : ''}`;
    case 'started':
      return `started ${ui.c.bold(r.name)}: run ${r.run_id}, PID ${r.pid}${r.trial ? ' (trial run: breaker half-open)' : ''}\nlog: ${r.log_path}`;
  }
}
