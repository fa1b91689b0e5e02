# fish completion for agentctl: generated from the command tree by scripts/gen-completions.mjs; do not edit
function __agentctl_cmd
    set -l tokens (commandline -opc)
    set -e tokens[1]
    while set -q tokens[1]
        switch $tokens[1]
            case --state-dir --config
                set -e tokens[1]
            case '-*'
            case '*'
                test "$tokens[1]" = "$argv[1]"
                return
        end
        set -e tokens[1]
    end
    return 1
end
function __agentctl_after_dashdash
    contains -- -- (commandline -opc)
end
# values from the state: agentctl __complete KIND, with the --state-dir of this line
function __agentctl_state
    set -l tokens (commandline -opc)
    set -l sd
    for i in (seq 2 (count $tokens))
        switch $tokens[$i]
            case --
                break
            case --state-dir
                set -q tokens[(math $i + 1)]; and set sd --state-dir $tokens[(math $i + 1)]
            case '--state-dir=*'
                set sd $tokens[$i]
        end
    end
    agentctl __complete $sd $argv (commandline -ct) 2>/dev/null
end
# after spawn ... --: the command and its arguments, as fish completes them
function __agentctl_child
    set -l tokens (commandline -opc)
    set -l i (contains -i -- -- $tokens)
    set -e tokens[1..$i]
    __fish_complete_subcommand --commandline $tokens (commandline -ct)
end
complete -c agentctl -f
complete -c agentctl -n 'not __agentctl_after_dashdash' -l json -d 'print one JSON document on stdout (errors too)'
complete -c agentctl -n 'not __agentctl_after_dashdash' -l quiet -s q -d 'print nothing on success unless asked for data'
complete -c agentctl -n 'not __agentctl_after_dashdash' -l wide -d 'do not fit tables and lines to the terminal (or to 80 columns when piped): nothing cut or wrapped'
complete -c agentctl -n 'not __agentctl_after_dashdash' -l state-dir -r -F -d 'state folder (default: $AGENTCTL_STATE_DIR, $XDG_STATE_HOME/agentctl, ~/.local/state/agentctl)'
complete -c agentctl -n 'not __agentctl_after_dashdash' -l config -r -F -d 'read this config file instead of ./agentctl.toml and ~/.config/agentctl/config.toml'
complete -c agentctl -n 'not __agentctl_after_dashdash' -l color -d 'force colour on'
complete -c agentctl -n 'not __agentctl_after_dashdash' -l no-color -d 'no colour (also NO_COLOR=1)'
complete -c agentctl -n '__fish_use_subcommand; and not __agentctl_after_dashdash' -l help -s h -d 'show help'
complete -c agentctl -n '__fish_use_subcommand; and not __agentctl_after_dashdash' -l version -s V -d 'print the version'
complete -c agentctl -n '__fish_use_subcommand' -a doctor -d 'check the host: load, memory, agents, duplicates, dead runs, spawn loops, breakers, ports, environments, services, config, state; a score 0-10 and remedies'
complete -c agentctl -n '__fish_use_subcommand' -a throttle-status -d 'sample memory, CPU, load, swap, PSI and agent counts; report the throttle level (0 normal .. 3 heavy)'
complete -c agentctl -n '__fish_use_subcommand' -a spawn -d 'start a worker only when it is safe: breaker, singleton, cooldown, rate limit, dependencies, concurrency cap'
complete -c agentctl -n '__fish_use_subcommand' -a ps -d 'list registered runs and the agents agentctl did not start; --watch for the live view (as agentctl top)'
complete -c agentctl -n '__fish_use_subcommand' -a top -d 'the live view: throttle level and why, agents against the cap, queue, open breakers, and each live run with CPU %, RSS, uptime, restarts and ports'
complete -c agentctl -n '__fish_use_subcommand' -a stats -d 'per name: runs, success rate, p50/p95/p99 duration (last 1,000 successful runs), failures by type'
complete -c agentctl -n '__fish_use_subcommand' -a dlq -d 'list runs that exhausted their retries; "dlq retry ID" resets the breaker and starts it again, detached'
complete -c agentctl -n '__fish_use_subcommand' -a breaker -d 'per-name backoff and circuit state, and the host-wide startup-failure breaker ("ls", the default); "reset NAME" or "reset --host" after fixing the cause'
complete -c agentctl -n '__fish_use_subcommand' -a env -d 'named environments: leased ports, an optional git worktree, a TTL (create, ls, rm)'
complete -c agentctl -n '__fish_use_subcommand' -a env-gc -d 'remove environments past their TTL or whose owner died: ports, and worktrees no live process uses'
complete -c agentctl -n '__fish_use_subcommand' -a ports -d 'the port pool: size, leased, free, and leases held by expired or dead owners'
complete -c agentctl -n '__fish_use_subcommand' -a reap -d 'find and end what should not run: dead or reused registered runs, overdue and hung runs, orphans, zombies (reported)'
complete -c agentctl -n '__fish_use_subcommand' -a stop -d 'graceful shutdown of registered runs: TERM, wait --grace, KILL; reports graceful vs forced'
complete -c agentctl -n '__fish_use_subcommand' -a up -d 'start the config\'s [[agents]] entries that should run and do not, through spawn\'s admission; leave running ones alone'
complete -c agentctl -n '__fish_use_subcommand' -a down -d 'stop the config\'s [[agents]] entries gracefully (TERM, --grace, KILL) and keep up from starting them until up NAME'
complete -c agentctl -n '__fish_use_subcommand' -a wait -d 'block until runs end; exit with the run\'s exit code (several: the first non-zero), 75 on --timeout'
complete -c agentctl -n '__fish_use_subcommand' -a logs -d 'print a detached run\'s log (a name\'s latest run, or a run id); -f follows it until the run ends and exits with its code'
complete -c agentctl -n '__fish_use_subcommand' -a dedupe-workers -d 'one instance per worker identity (the script in its real folder, without interpreter, _vN suffix or daemon flags): end the rest'
complete -c agentctl -n '__fish_use_subcommand' -a config -d 'print every effective configuration value and where it came from; exit 78 when invalid'
complete -c agentctl -n '__fish_use_subcommand' -a events -d 'show the audit log: every decision and action, with its reason'
complete -c agentctl -n '__fish_use_subcommand' -a fleet -d 'the fleet-wide cap on PostgreSQL: "fleet init" creates the lease table, "fleet status" shows the leases per group and host'
complete -c agentctl -n '__fish_use_subcommand' -a completion -d 'print the shell completion script for bash, zsh or fish'
complete -c agentctl -n '__fish_use_subcommand' -a help -d 'show help for a command (the same as COMMAND --help)'
complete -c agentctl -n '__agentctl_cmd doctor; and not __agentctl_after_dashdash' -l check -r -f -a 'host.load host.cpu_idle host.memory host.pressure agents.count agents.throttle agents.duplicates agents.restart_loops runs.stale runs.spawn_loops runs.host_breaker runs.breakers runs.failure_rate ports.pool ports.double_listeners envs.expired envs.worktrees envs.half_created config.valid config.drift config.supervisor state.integrity state.disk' -d 'run only these checks (e.g. host.load services.orchestrator)'
complete -c agentctl -n '__agentctl_cmd doctor; and not __agentctl_after_dashdash' -l strict -d 'warnings fail too'
complete -c agentctl -n '__agentctl_cmd doctor; and not __agentctl_after_dashdash' -l fix -d 'apply the safe remedies (record dead runs, drop stale PID files, env-gc without force), then check again'
complete -c agentctl -n '__agentctl_cmd doctor; and not __agentctl_after_dashdash' -l fix-processes -d 'with --fix, also end duplicate workers and reap overdue or hung runs'
complete -c agentctl -n '__agentctl_cmd doctor; and not __agentctl_after_dashdash' -l prometheus -r -F -d 'write every check and the score in node_exporter textfile format, atomically'
complete -c agentctl -n '__agentctl_cmd doctor; and not __agentctl_after_dashdash' -l help -s h -d 'show help'
complete -c agentctl -n '__agentctl_cmd throttle-status; and not __agentctl_after_dashdash' -l watch -d 'print a new reading every interval until interrupted (alone: 2s)'
complete -c agentctl -n '__agentctl_cmd throttle-status; and not __agentctl_after_dashdash' -l max-level -r -d 'exit 75 when the level is above n (0-3)'
complete -c agentctl -n '__agentctl_cmd throttle-status; and not __agentctl_after_dashdash' -l wait-level -r -d 'wait until the level is at or below n (0-3); exit 75 on timeout'
complete -c agentctl -n '__agentctl_cmd throttle-status; and not __agentctl_after_dashdash' -l timeout -r -d 'how long --wait-level waits (default: 60s)'
complete -c agentctl -n '__agentctl_cmd throttle-status; and not __agentctl_after_dashdash' -l write -r -F -d 'also write resource_metrics.json (seed format) to file, atomically'
complete -c agentctl -n '__agentctl_cmd throttle-status; and not __agentctl_after_dashdash' -l prometheus -r -F -d 'also write node_exporter textfile metrics to file, atomically'
complete -c agentctl -n '__agentctl_cmd throttle-status; and not __agentctl_after_dashdash' -l help -s h -d 'show help'
complete -c agentctl -n '__agentctl_cmd spawn; and not __agentctl_after_dashdash' -l name -r -d 'run name; one instance per name (default: the program the command runs, e.g. worker.py for python3 worker.py)'
complete -c agentctl -n '__agentctl_cmd spawn; and not __agentctl_after_dashdash' -l group -r -d 'concurrency group the cap applies to (default: default)'
complete -c agentctl -n '__agentctl_cmd spawn; and not __agentctl_after_dashdash' -l priority -r -d 'queue priority: 1 critical, 2 important, 3 normal (default: 3)'
complete -c agentctl -n '__agentctl_cmd spawn; and not __agentctl_after_dashdash' -l max -r -d 'at most n live runs in the group (also capped by the throttle level)'
complete -c agentctl -n '__agentctl_cmd spawn; and not __agentctl_after_dashdash' -l requires -r -d 'names that must be running and healthy (exit 69 otherwise)'
complete -c agentctl -n '__agentctl_cmd spawn; and not __agentctl_after_dashdash' -l if-not-running -d 'exit 0 when the name is already running'
complete -c agentctl -n '__agentctl_cmd spawn; and not __agentctl_after_dashdash' -l detach -s d -d 'return at once; exit code, duration and failure type are still recorded'
complete -c agentctl -n '__agentctl_cmd spawn; and not __agentctl_after_dashdash' -l wait -d 'queue for a slot instead of refusing; exit 75 when it runs out (alone: 1h)'
complete -c agentctl -n '__agentctl_cmd spawn; and not __agentctl_after_dashdash' -l timeout -r -d 'TERM the process group after this long, KILL after --kill-grace'
complete -c agentctl -n '__agentctl_cmd spawn; and not __agentctl_after_dashdash' -l kill-grace -r -d 'time between TERM and KILL (default: spawn.kill_grace)'
complete -c agentctl -n '__agentctl_cmd spawn; and not __agentctl_after_dashdash' -l memory-max -r -d 'memory limit (cgroup MemoryMax, else address space), e.g. 512M'
complete -c agentctl -n '__agentctl_cmd spawn; and not __agentctl_after_dashdash' -l cpu-time -r -d 'CPU time limit, e.g. 1h'
complete -c agentctl -n '__agentctl_cmd spawn; and not __agentctl_after_dashdash' -l nice -r -d 'run at this niceness (0-19)'
complete -c agentctl -n '__agentctl_cmd spawn; and not __agentctl_after_dashdash' -l port -r -d 'lease n ports for the run: PORT, PORT_1..PORT_n and AGENTCTL_PORTS in its environment'
complete -c agentctl -n '__agentctl_cmd spawn; and not __agentctl_after_dashdash' -l env -r -d 'run inside an environment: its ports as PORT..., AGENTCTL_ENV=name'
complete -c agentctl -n '__agentctl_cmd spawn; and not __agentctl_after_dashdash' -l each -F -d 'a batch: run each line of FILE (- for stdin) as sh -c LINE, one registered run per line, through one admission loop (alone: -)'
complete -c agentctl -n '__agentctl_cmd spawn; and not __agentctl_after_dashdash' -l null -s 0 -d 'with --each: the command lines are NUL-separated (a command may hold newlines)'
complete -c agentctl -n '__agentctl_cmd spawn; and not __agentctl_after_dashdash' -l joblog -r -F -d 'with --each: write GNU parallel\'s joblog to FILE as jobs end'
complete -c agentctl -n '__agentctl_cmd spawn; and not __agentctl_after_dashdash' -l restart -r -d 'with -d: when the run ends, its supervisor starts it again after the backoff, through admission: on-failure or always'
complete -c agentctl -n '__agentctl_cmd spawn; and not __agentctl_after_dashdash' -l retries -r -d 'with --each: run a failed job up to n more times; with --restart: give up into the DLQ after n failed restarts in a row'
complete -c agentctl -n '__agentctl_cmd spawn; and not __agentctl_after_dashdash' -l halt-on-failure -r -d 'with --each: after n failed jobs start no more; running ones finish'
complete -c agentctl -n '__agentctl_cmd spawn; and not __agentctl_after_dashdash' -l help -s h -d 'show help'
complete -c agentctl -n '__agentctl_cmd spawn; and __agentctl_after_dashdash' -a '(__agentctl_child)'
complete -c agentctl -n '__agentctl_cmd ps; and not __agentctl_after_dashdash' -l watch -d 'the live view: redraw every interval on a terminal (q or Ctrl-C leaves); piped, a snapshot per interval (alone: 1s)'
complete -c agentctl -n '__agentctl_cmd ps; and not __agentctl_after_dashdash' -l fleet -d 'also the fleet-wide leases per group and host, from PostgreSQL (needs [fleet])'
complete -c agentctl -n '__agentctl_cmd ps; and not __agentctl_after_dashdash' -l help -s h -d 'show help'
complete -c agentctl -n '__agentctl_cmd top; and not __agentctl_after_dashdash' -l help -s h -d 'show help'
complete -c agentctl -n '__agentctl_cmd stats; and not __agentctl_after_dashdash' -l since -r -d 'only runs started since (e.g. 24h) or an ISO time'
complete -c agentctl -n '__agentctl_cmd stats; and not __agentctl_after_dashdash' -l name -r -d 'only this name'
complete -c agentctl -n '__agentctl_cmd stats; and not __agentctl_after_dashdash' -l help -s h -d 'show help'
complete -c agentctl -n '__agentctl_cmd dlq; and not __agentctl_after_dashdash' -l help -s h -d 'show help'
complete -c agentctl -n '__agentctl_cmd dlq; and not __agentctl_after_dashdash; and not __fish_seen_subcommand_from retry' -a 'retry'
complete -c agentctl -n '__agentctl_cmd dlq; and not __agentctl_after_dashdash; and __fish_seen_subcommand_from retry' -a '(__agentctl_state dlq)'
complete -c agentctl -n '__agentctl_cmd breaker; and not __agentctl_after_dashdash' -l host -d 'with reset: reset the host-wide startup-failure breaker'
complete -c agentctl -n '__agentctl_cmd breaker; and not __agentctl_after_dashdash' -l help -s h -d 'show help'
complete -c agentctl -n '__agentctl_cmd breaker; and not __agentctl_after_dashdash; and not __fish_seen_subcommand_from ls reset' -a 'ls reset'
complete -c agentctl -n '__agentctl_cmd breaker; and not __agentctl_after_dashdash; and __fish_seen_subcommand_from reset' -a '(__agentctl_state breakers)'
complete -c agentctl -n '__agentctl_cmd env; and not __agentctl_after_dashdash' -l ports -r -d 'ports to lease from the pool (create) (default: 1)'
complete -c agentctl -n '__agentctl_cmd env; and not __agentctl_after_dashdash' -l ttl -r -d 'time to live (create) (default: env.ttl)'
complete -c agentctl -n '__agentctl_cmd env; and not __agentctl_after_dashdash' -l worktree -r -F -d 'create a git worktree at path (create)'
complete -c agentctl -n '__agentctl_cmd env; and not __agentctl_after_dashdash' -l repo -r -F -d 'repository for --worktree (default: the current folder)'
complete -c agentctl -n '__agentctl_cmd env; and not __agentctl_after_dashdash' -l branch -r -d 'branch for --worktree (created when missing; default: detached HEAD)'
complete -c agentctl -n '__agentctl_cmd env; and not __agentctl_after_dashdash' -l owner-pid -r -d 'the environment ends when this process does (create)'
complete -c agentctl -n '__agentctl_cmd env; and not __agentctl_after_dashdash' -l unique -d 'add a suffix (-2, -3...) when the name is taken (create)'
complete -c agentctl -n '__agentctl_cmd env; and not __agentctl_after_dashdash' -l force -d 'rm: remove a worktree with uncommitted, unpushed or locked work'
complete -c agentctl -n '__agentctl_cmd env; and not __agentctl_after_dashdash' -l dry-run -d 'rm: say what would be removed, change nothing'
complete -c agentctl -n '__agentctl_cmd env; and not __agentctl_after_dashdash' -l help -s h -d 'show help'
complete -c agentctl -n '__agentctl_cmd env; and not __agentctl_after_dashdash; and not __fish_seen_subcommand_from create ls rm' -a 'create ls rm'
complete -c agentctl -n '__agentctl_cmd env-gc; and not __agentctl_after_dashdash' -l dry-run -d 'say what would be removed, change nothing'
complete -c agentctl -n '__agentctl_cmd env-gc; and not __agentctl_after_dashdash' -l force -d 'also remove worktrees with uncommitted, unpushed, ignored or locked work (never one in use)'
complete -c agentctl -n '__agentctl_cmd env-gc; and not __agentctl_after_dashdash' -l help -s h -d 'show help'
complete -c agentctl -n '__agentctl_cmd ports; and not __agentctl_after_dashdash' -l help -s h -d 'show help'
complete -c agentctl -n '__agentctl_cmd reap; and not __agentctl_after_dashdash' -l dry-run -d 'report findings, change nothing'
complete -c agentctl -n '__agentctl_cmd reap; and not __agentctl_after_dashdash' -l timeout -r -d 'end runs older than this (each run\'s own --timeout always counts) (default: reap.max_runtime)'
complete -c agentctl -n '__agentctl_cmd reap; and not __agentctl_after_dashdash' -l idle -r -d 'end runs with no CPU progress and no log output for this long (default: reap.idle)'
complete -c agentctl -n '__agentctl_cmd reap; and not __agentctl_after_dashdash' -l grace -r -d 'TERM, then this long, then KILL (default: reap.grace)'
complete -c agentctl -n '__agentctl_cmd reap; and not __agentctl_after_dashdash' -l orphans -d 'also end agent processes whose parent died and that nothing registered'
complete -c agentctl -n '__agentctl_cmd reap; and not __agentctl_after_dashdash' -l shed -d 'at throttle level 3 (heavy), stop lowest-priority runs until the level\'s agent count is met'
complete -c agentctl -n '__agentctl_cmd reap; and not __agentctl_after_dashdash' -l all-users -d 'root only: also act on other users\' processes'
complete -c agentctl -n '__agentctl_cmd reap; and not __agentctl_after_dashdash' -l verbose -d 'also say so when another reap holds the lock and this one did nothing'
complete -c agentctl -n '__agentctl_cmd reap; and not __agentctl_after_dashdash' -l help -s h -d 'show help'
complete -c agentctl -n '__agentctl_cmd stop; and not __agentctl_after_dashdash' -l group -r -f -a '(__agentctl_state groups)' -d 'every run in this group'
complete -c agentctl -n '__agentctl_cmd stop; and not __agentctl_after_dashdash' -l all -d 'every registered run'
complete -c agentctl -n '__agentctl_cmd stop; and not __agentctl_after_dashdash' -l grace -r -d 'how long to wait after TERM before KILL (default: 30s)'
complete -c agentctl -n '__agentctl_cmd stop; and not __agentctl_after_dashdash' -l dry-run -d 'say what would be stopped'
complete -c agentctl -n '__agentctl_cmd stop; and not __agentctl_after_dashdash' -l all-users -d 'root only: also runs owned by other users'
complete -c agentctl -n '__agentctl_cmd stop; and not __agentctl_after_dashdash' -l help -s h -d 'show help'
complete -c agentctl -n '__agentctl_cmd stop; and not __agentctl_after_dashdash' -a '(__agentctl_state names)'
complete -c agentctl -n '__agentctl_cmd up; and not __agentctl_after_dashdash' -l dry-run -d 'say what would start, restart or be pruned; change nothing'
complete -c agentctl -n '__agentctl_cmd up; and not __agentctl_after_dashdash' -l restart-changed -d 'restart runs whose entry changed since they started (drift)'
complete -c agentctl -n '__agentctl_cmd up; and not __agentctl_after_dashdash' -l prune -d 'stop runs up started from this config whose entry is no longer in it'
complete -c agentctl -n '__agentctl_cmd up; and not __agentctl_after_dashdash' -l grace -r -d 'TERM-to-KILL grace for --restart-changed and --prune (default: 30s)'
complete -c agentctl -n '__agentctl_cmd up; and not __agentctl_after_dashdash' -l help -s h -d 'show help'
complete -c agentctl -n '__agentctl_cmd down; and not __agentctl_after_dashdash' -l grace -r -d 'how long to wait after TERM before KILL (default: 30s)'
complete -c agentctl -n '__agentctl_cmd down; and not __agentctl_after_dashdash' -l dry-run -d 'say what would be stopped; change nothing'
complete -c agentctl -n '__agentctl_cmd down; and not __agentctl_after_dashdash' -l help -s h -d 'show help'
complete -c agentctl -n '__agentctl_cmd wait; and not __agentctl_after_dashdash' -l timeout -r -d 'give up after this long (exit 75); the runs go on'
complete -c agentctl -n '__agentctl_cmd wait; and not __agentctl_after_dashdash' -l any -d 'return as soon as one of the runs ends, with its code'
complete -c agentctl -n '__agentctl_cmd wait; and not __agentctl_after_dashdash' -l help -s h -d 'show help'
complete -c agentctl -n '__agentctl_cmd logs; and not __agentctl_after_dashdash' -l lines -s n -r -d 'print the last n lines (0: none), from <log>.prev too when the log was capped (default: 10)'
complete -c agentctl -n '__agentctl_cmd logs; and not __agentctl_after_dashdash' -l follow -s f -d 'print new lines as they are written until the run ends; exit with the run\'s code'
complete -c agentctl -n '__agentctl_cmd logs; and not __agentctl_after_dashdash' -l next -d 'with -f: when the run ends, go on with the name\'s next detached run, and so on, until interrupted'
complete -c agentctl -n '__agentctl_cmd logs; and not __agentctl_after_dashdash' -l help -s h -d 'show help'
complete -c agentctl -n '__agentctl_cmd dedupe-workers; and not __agentctl_after_dashdash' -l match -r -d 'only command lines matching this (default: processes running a script)'
complete -c agentctl -n '__agentctl_cmd dedupe-workers; and not __agentctl_after_dashdash' -l keep -r -f -a 'highest-version newest oldest' -d 'which instance to keep (highest-version breaks ties by newest) (default: highest-version)'
complete -c agentctl -n '__agentctl_cmd dedupe-workers; and not __agentctl_after_dashdash' -l grace -r -d 'TERM, then this long, then KILL (default: reap.grace)'
complete -c agentctl -n '__agentctl_cmd dedupe-workers; and not __agentctl_after_dashdash' -l dry-run -d 'show the groups and what would be ended'
complete -c agentctl -n '__agentctl_cmd dedupe-workers; and not __agentctl_after_dashdash' -l all-users -d 'root only: also other users\' processes'
complete -c agentctl -n '__agentctl_cmd dedupe-workers; and not __agentctl_after_dashdash' -l across-folders -d 'the same script name in two folders is one worker (default: two)'
complete -c agentctl -n '__agentctl_cmd dedupe-workers; and not __agentctl_after_dashdash' -l help -s h -d 'show help'
complete -c agentctl -n '__agentctl_cmd config; and not __agentctl_after_dashdash' -l help -s h -d 'show help'
complete -c agentctl -n '__agentctl_cmd events; and not __agentctl_after_dashdash' -l since -r -d 'only events newer than this (e.g. 30m, 1h, 7d) or an ISO time'
complete -c agentctl -n '__agentctl_cmd events; and not __agentctl_after_dashdash' -l kind -r -d 'only events of this kind (e.g. throttle.level)'
complete -c agentctl -n '__agentctl_cmd events; and not __agentctl_after_dashdash' -l command -r -d 'only events written by this command'
complete -c agentctl -n '__agentctl_cmd events; and not __agentctl_after_dashdash' -l limit -r -d 'at most n events, the newest (default: 100)'
complete -c agentctl -n '__agentctl_cmd events; and not __agentctl_after_dashdash' -l follow -s f -d 'then print new events as they are written, one a line (--json: JSON lines), until interrupted'
complete -c agentctl -n '__agentctl_cmd events; and not __agentctl_after_dashdash' -l help -s h -d 'show help'
complete -c agentctl -n '__agentctl_cmd fleet; and not __agentctl_after_dashdash' -l help -s h -d 'show help'
complete -c agentctl -n '__agentctl_cmd fleet; and not __agentctl_after_dashdash; and not __fish_seen_subcommand_from init status' -a 'init status'
complete -c agentctl -n '__agentctl_cmd completion; and not __agentctl_after_dashdash' -l help -s h -d 'show help'
complete -c agentctl -n '__agentctl_cmd completion; and not __agentctl_after_dashdash; and not __fish_seen_subcommand_from bash zsh fish' -a 'bash zsh fish'
complete -c agentctl -n '__agentctl_cmd help; and not __agentctl_after_dashdash; and not __fish_seen_subcommand_from doctor throttle-status spawn ps top stats dlq breaker env env-gc ports reap stop up down wait logs dedupe-workers config events fleet completion' -a 'doctor throttle-status spawn ps top stats dlq breaker env env-gc ports reap stop up down wait logs dedupe-workers config events fleet completion'
