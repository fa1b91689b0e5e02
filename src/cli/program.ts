/**
 * The command tree. Only commander is loaded here: each command's module is imported when
 * that command runs, so `agentctl --version` never pays for SQLite or systeminformation.
 * The completion scripts are generated from this tree (scripts/gen-completions.mjs).
 */
import { Argument, Command, CommanderError, Option } from 'commander';

export { CommanderError };

/** Called when a command runs: its module name, its own options and its arguments. */
export type Dispatch = (module: string, opts: Record<string, unknown>, args: string[], cmd: Command) => Promise<void>;

const examples = (lines: string[]) => `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;

/** Options whose value is a file or folder path, for completion. */
export const PATH_OPTIONS = new Set(['--state-dir', '--config', '--write', '--prometheus', '--worktree', '--repo']);

export function buildProgram(version: string, dispatch: Dispatch): Command {
  const program = new Command('agentctl')
    .description('Keep one host healthy while it runs a fleet of AI coding agents.')
    .version(version, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .addHelpCommand(false)
    .option('--json', 'print one JSON document on stdout (errors too)')
    .option('-q, --quiet', 'print nothing on success unless asked for data')
    .option('--state-dir <dir>', 'state folder (default: $AGENTCTL_STATE_DIR, $XDG_STATE_HOME/agentctl, ~/.local/state/agentctl)')
    .option('--config <file>', 'read this config file instead of ./agentctl.toml and ~/.config/agentctl/config.toml')
    .option('--color', 'force colour on')
    .option('--no-color', 'no colour (also NO_COLOR=1)')
    .showSuggestionAfterError(true)
    .addHelpText(
      'after',
      examples([
        'agentctl throttle-status',
        'agentctl throttle-status --max-level 1 && make heavy',
        'agentctl --json throttle-status --write /run/agentctl/resource_metrics.json',
        'agentctl config',
        'agentctl events --since 1h',
      ]) +
        '\nExit codes: 0 ok, 1 failed, 2 bad input, 69 refused, 75 try later, 78 config invalid.\n',
    );

  program
    .command('doctor')
    .description('check the host: load, memory, agents, duplicates, dead runs, spawn loops, breakers, ports, environments, services, config, state; a score 0-10 and remedies')
    .option('--check <ids...>', 'run only these checks (e.g. host.load services.orchestrator)')
    .option('--strict', 'warnings fail too')
    .option('--fix', 'apply the safe remedies (record dead runs, drop stale PID files, env-gc without force), then check again')
    .option('--fix-processes', 'with --fix, also end duplicate workers and reap overdue or hung runs')
    .option('--prometheus <file>', 'write every check and the score in node_exporter textfile format, atomically')
    .addHelpText(
      'after',
      examples(['agentctl doctor', 'agentctl doctor --json | jq .score', 'agentctl doctor --strict && echo healthy', 'agentctl doctor --fix', 'agentctl doctor --check host.load host.memory']) +
        '\nExit codes: 0 nothing failing (with --strict: no warnings either), 1 otherwise, 2 bad input.\n',
    )
    .action(async (opts: Record<string, unknown>, cmd: Command) => dispatch('doctor', opts, cmd.args, cmd));

  program
    .command('throttle-status')
    .description('sample memory, CPU, load, swap, PSI and agent counts; report the throttle level (0 normal .. 3 heavy)')
    .addOption(new Option('--watch [interval]', 'print a new reading every interval (default 2s) until interrupted'))
    .option('--max-level <n>', 'exit 75 when the level is above n (0-3)')
    .option('--wait-level <n>', 'wait until the level is at or below n (0-3); exit 75 on timeout')
    .option('--timeout <duration>', 'how long --wait-level waits', '60s')
    .option('--write <file>', 'also write resource_metrics.json (seed format) to file, atomically')
    .option('--prometheus <file>', 'also write node_exporter textfile metrics to file, atomically')
    .addHelpText(
      'after',
      examples([
        'agentctl throttle-status',
        'agentctl throttle-status --json',
        'agentctl throttle-status --max-level 1 && make heavy',
        'agentctl throttle-status --wait-level 1 --timeout 60s && ./run-batch.sh',
        'agentctl throttle-status --watch 5s',
        'agentctl throttle-status --quiet --prometheus /var/lib/node_exporter/agentctl.prom',
        'AGENTCTL_DISABLE_THROTTLE=1 agentctl throttle-status   # forces level 0, and says so',
      ]),
    )
    .action(async (opts: Record<string, unknown>, cmd: Command) => dispatch('throttle-status', opts, cmd.args, cmd));

  program
    .command('spawn')
    .description('start a worker only when it is safe: breaker, singleton, cooldown, rate limit, dependencies, concurrency cap')
    .usage('[options] -- CMD [ARGS...]')
    .argument('[command...]', 'the command to run (after --)')
    .option('--name <name>', 'run name; one instance per name (default: the program the command runs, e.g. worker.py for python3 worker.py)')
    .option('--group <group>', 'concurrency group the cap applies to', 'default')
    .option('--priority <n>', 'queue priority: 1 critical, 2 important, 3 normal', '3')
    .option('--max <n>', 'at most n live runs in the group (also capped by the throttle level)')
    .option('--requires <names...>', 'names that must be running and healthy (exit 69 otherwise)')
    .option('--if-not-running', 'exit 0 when the name is already running')
    .option('-d, --detach', 'return at once; exit code, duration and failure type are still recorded')
    .addOption(new Option('--wait [duration]', 'queue for a slot instead of refusing (default 1h); exit 75 when it runs out'))
    .option('--timeout <duration>', 'TERM the process group after this long, KILL after --kill-grace')
    .option('--kill-grace <duration>', 'time between TERM and KILL (default: spawn.kill_grace, 10s)')
    .option('--memory-max <size>', 'memory limit (cgroup MemoryMax, else address space), e.g. 512M')
    .option('--cpu-time <duration>', 'CPU time limit, e.g. 1h')
    .option('--nice <n>', 'run at this niceness (0-19)')
    .option('--port <n>', 'lease n ports for the run: PORT, PORT_1..PORT_n and AGENTCTL_PORTS in its environment')
    .option('--env <name>', 'run inside an environment: its ports as PORT..., AGENTCTL_ENV=name')
    .addHelpText(
      'after',
      examples([
        'agentctl spawn --name consult-42 --group consult --max 3 -- claude --print "review PR 42"',
        'agentctl spawn -d --name auto-confirm --if-not-running -- python3 auto_confirm_worker_v2.py --daemon',
        'agentctl spawn --wait 10m --priority 1 --group batch --max 3 -- ./job.sh',
        'agentctl spawn -d --timeout 60s --memory-max 2G --name assigner -- python3 assigner.py',
        'agentctl spawn --requires orchestrator --name worker-1 -- node worker.js',
      ]) + '\nExit codes: the child\'s own code in the foreground (128+n for signal n); 75 no slot, cooldown, backoff, rate limit or --wait ran out; 69 circuit open or a dependency unhealthy.\n',
    )
    .action(async (command: string[], opts: Record<string, unknown>, cmd: Command) => dispatch('spawn', opts, command, cmd));

  program
    .command('ps')
    .description('list registered runs and the agents agentctl did not start')
    .addHelpText('after', examples(['agentctl ps', 'agentctl ps --json | jq \'.runs[] | select(.breaker != "closed")\'']))
    .action(async (opts: Record<string, unknown>, cmd: Command) => dispatch('ps', opts, cmd.args, cmd));

  program
    .command('stats')
    .description('per name: runs, success rate, p50/p95/p99 duration (last 1,000 successful runs), failures by type')
    .option('--since <duration>', 'only runs started since (e.g. 24h) or an ISO time')
    .option('--name <name>', 'only this name')
    .addHelpText('after', examples(['agentctl stats', 'agentctl stats --since 24h --json']))
    .action(async (opts: Record<string, unknown>, cmd: Command) => dispatch('stats', opts, cmd.args, cmd));

  program
    .command('dlq')
    .description('list runs that exhausted their retries; "dlq retry ID" resets the breaker and starts it again, detached')
    .argument('[action]', 'retry')
    .argument('[id]', 'entry id for retry')
    .addHelpText('after', examples(['agentctl dlq', 'agentctl dlq retry 3', "agentctl dlq --json | jq '.entries | length'"]))
    .action(async (action: string | undefined, id: string | undefined, opts: Record<string, unknown>, cmd: Command) =>
      dispatch('dlq', opts, [action, id].filter((x): x is string => x !== undefined), cmd),
    );

  program
    .command('breaker')
    .description('per-name backoff and circuit state, and the host-wide startup-failure breaker ("ls", the default); "reset NAME" or "reset --host" after fixing the cause')
    .addArgument(new Argument('[action]', 'ls or reset').choices(['ls', 'reset']))
    .argument('[name]', 'name to reset')
    .option('--host', 'with reset: reset the host-wide startup-failure breaker')
    .addHelpText('after', examples(['agentctl breaker', 'agentctl breaker reset assigner', 'agentctl breaker reset --host']))
    .action(async (action: string | undefined, name: string | undefined, opts: Record<string, unknown>, cmd: Command) =>
      dispatch('breaker', opts, [action ?? 'ls', name].filter((x): x is string => x !== undefined), cmd),
    );

  const env = program
    .command('env')
    .description('named environments: leased ports, an optional git worktree, a TTL (create, ls, rm)')
    .addArgument(new Argument('[action]', 'create, ls or rm').choices(['create', 'ls', 'rm']))
    .argument('[name]', 'environment name')
    .option('--ports <n>', 'ports to lease from the pool (create; default 1)')
    .option('--ttl <duration>', 'time to live (create; default env.ttl, 24h)')
    .option('--worktree <path>', 'create a git worktree at path (create)')
    .option('--repo <dir>', 'repository for --worktree (default: the current folder)')
    .option('--branch <branch>', 'branch for --worktree (created when missing; default: detached HEAD)')
    .option('--owner-pid <pid>', 'the environment ends when this process does (create)')
    .option('--unique', 'add a suffix (-2, -3...) when the name is taken (create)')
    .option('--force', 'rm: remove a worktree with uncommitted, unpushed or locked work')
    .option('--dry-run', 'rm: say what would be removed, change nothing')
    .addHelpText(
      'after',
      examples([
        'agentctl env create reading-ui-improvement --ports 2 --ttl 24h',
        'agentctl env create gh-123 --unique --worktree trees/gh-123 --branch gh-123',
        'agentctl env ls --json',
        'agentctl env rm gh-123',
      ]),
    )
    .action(async (action: string | undefined, name: string | undefined, opts: Record<string, unknown>, cmd: Command) =>
      dispatch('env', opts, [action ?? 'ls', name].filter((x): x is string => x !== undefined), cmd),
    );
  void env;

  program
    .command('env-gc')
    .description('remove environments past their TTL or whose owner died: ports, and worktrees no live process uses')
    .option('--dry-run', 'say what would be removed, change nothing')
    .option('--force', 'also remove worktrees with uncommitted, unpushed, ignored or locked work (never one in use)')
    .addHelpText('after', examples(['agentctl env-gc --dry-run', '*/5 * * * * agentctl env-gc --quiet', 'agentctl env-gc --json']))
    .action(async (opts: Record<string, unknown>, cmd: Command) => dispatch('env-gc', opts, cmd.args, cmd));

  program
    .command('ports')
    .description('the port pool: size, leased, free, and leases held by expired or dead owners')
    .addHelpText('after', examples(['agentctl ports', 'agentctl ports --json | jq .free']))
    .action(async (opts: Record<string, unknown>, cmd: Command) => dispatch('ports', opts, cmd.args, cmd));

  program
    .command('reap')
    .description('find and end what should not run: dead or reused registered runs, overdue and hung runs, orphans, zombies (reported)')
    .option('--dry-run', 'report findings, change nothing')
    .option('--timeout <duration>', 'end runs older than this (default reap.max_runtime; each run\'s own --timeout always counts)')
    .option('--idle <duration>', 'end runs with no CPU progress and no log output for this long (default reap.idle)')
    .option('--grace <duration>', 'TERM, then this long, then KILL (default reap.grace, 10s)')
    .option('--orphans', 'also end agent processes whose parent died and that nothing registered')
    .option('--shed', 'at throttle level 3 (heavy), stop lowest-priority runs until the level\'s agent count is met')
    .option('--all-users', 'root only: also act on other users\' processes')
    .addHelpText('after', examples(['agentctl reap --dry-run', '*/5 * * * * agentctl reap --quiet --idle 5m', 'agentctl reap --orphans --json', 'agentctl reap --shed']))
    .action(async (opts: Record<string, unknown>, cmd: Command) => dispatch('reap', opts, cmd.args, cmd));

  program
    .command('stop')
    .description('graceful shutdown of registered runs: TERM, wait --grace, KILL; reports graceful vs forced')
    .argument('[names...]', 'run names')
    .option('--group <group>', 'every run in this group')
    .option('--all', 'every registered run')
    .option('--grace <duration>', 'how long to wait after TERM before KILL', '30s')
    .option('--dry-run', 'say what would be stopped')
    .option('--all-users', 'root only: also runs owned by other users')
    .addHelpText('after', examples(['agentctl stop assigner', 'agentctl stop --group consult --grace 10s', 'agentctl stop --all --json']))
    .action(async (names: string[], opts: Record<string, unknown>, cmd: Command) => dispatch('stop', opts, names, cmd));

  program
    .command('dedupe-workers')
    .description('one instance per worker identity (the script in its real folder, without interpreter, _vN suffix or daemon flags): end the rest')
    .option('--match <regex>', 'only command lines matching this (default: processes running a script)')
    .addOption(new Option('--keep <policy>', 'which instance to keep (default: highest-version, then newest)').choices(['highest-version', 'newest', 'oldest']))
    .option('--grace <duration>', 'TERM, then this long, then KILL (default reap.grace, 10s)')
    .option('--dry-run', 'show the groups and what would be ended')
    .option('--all-users', 'root only: also other users\' processes')
    .option('--across-folders', 'the same script name in two folders is one worker (default: two)')
    .addHelpText('after', examples(['agentctl dedupe-workers --dry-run', "agentctl dedupe-workers --match 'auto_confirm_worker'", 'agentctl dedupe-workers --keep oldest --json']))
    .action(async (opts: Record<string, unknown>, cmd: Command) => dispatch('dedupe-workers', opts, cmd.args, cmd));

  program
    .command('_end-run', { hidden: true })
    .argument('<run-id>')
    .option('--grace <duration>', 'time between TERM and KILL', '10s')
    .action(async (runId: string, opts: Record<string, unknown>, cmd: Command) => dispatch('end-run', opts, [runId], cmd));

  program
    .command('config')
    .description('print every effective configuration value and where it came from; exit 78 when invalid')
    .addHelpText(
      'after',
      examples([
        'agentctl config',
        'agentctl config --json | jq .values.throttle.memory_pct',
        'AGENTCTL_THROTTLE_CPU_PCT=50,70,85 agentctl config',
        'agentctl --config ./ci.toml config',
      ]),
    )
    .action(async (opts: Record<string, unknown>, cmd: Command) => dispatch('config', opts, cmd.args, cmd));

  program
    .command('events')
    .description('show the audit log: every decision and action, with its reason')
    .option('--since <duration>', 'only events newer than this (e.g. 30m, 1h, 7d) or an ISO time')
    .option('--kind <kind>', 'only events of this kind (e.g. throttle.level)')
    .option('--command <name>', 'only events written by this command')
    .option('--limit <n>', 'at most n events, the newest', '100')
    .addHelpText('after', examples(['agentctl events --since 1h', 'agentctl events --kind throttle.level --json', 'agentctl events --limit 20']))
    .action(async (opts: Record<string, unknown>, cmd: Command) => dispatch('events', opts, cmd.args, cmd));

  program
    .command('completion')
    .description('print the shell completion script for bash, zsh or fish')
    .addArgument(new Argument('<shell>', 'the shell').choices(['bash', 'zsh', 'fish']))
    .addHelpText(
      'after',
      examples([
        'agentctl completion bash > /etc/bash_completion.d/agentctl',
        'agentctl completion zsh > "${fpath[1]}/_agentctl"',
        'agentctl completion fish > ~/.config/fish/completions/agentctl.fish',
      ]),
    )
    .action(async (shell: string, opts: Record<string, unknown>, cmd: Command) => dispatch('completion', opts, [shell], cmd));

  refuseRepeatedOptions(program);
  return program;
}

/**
 * A single-value option given twice (`--max 3 --max 4`) is bad input: commander would keep the
 * last one silently. Counted as commander parses, so `--max=4`, and global options before or
 * after the command name, count alike; what follows `--` is the child's. Options that take
 * several values (`--check <ids...>`, `--requires <names...>`) and on/off flags may repeat.
 * For one parse of `cmd` and its subcommands.
 */
export function refuseRepeatedOptions(cmd: Command): void {
  for (const o of cmd.options) {
    if (o.variadic || !(o.required || o.optional)) continue;
    const seen: Array<string | null> = [];
    cmd.on(`option:${o.name()}`, (value: string | null) => {
      seen.push(value ?? null);
      if (seen.length < 2) return;
      const values = seen.every((v) => v !== null) ? ` (${seen.map((v) => JSON.stringify(v)).join(', then ')})` : '';
      cmd.error(`${o.long ?? o.flags}: given twice${values}; give it once`, { exitCode: 2, code: 'agentctl.repeatedOption' });
    });
  }
  for (const sub of cmd.commands) refuseRepeatedOptions(sub);
}
