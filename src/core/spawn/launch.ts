/**
 * Starting the child: resource limits through the best mechanism present, and for detached
 * runs a /bin/sh supervisor (about 1 MB) that waits for the child and records its exit status
 * in a file the next agentctl command reads. A Node process per agent would cost 40 MB.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { BELL_FILE } from '../bell.js';
import { distrustNativeSupervisor, nativeSupervisor } from '../native.js';
import { envOn } from '../config/keys.js';
import { SUPERVISOR_ARGV0 } from '../proc.js';
import { type DetachedStart, Forker, NotForked, UnsureStart } from './forker.js';

export type { DetachedStart } from './forker.js';

export interface Limits {
  /** bytes of address space (RLIMIT_AS) or cgroup MemoryMax */
  readonly memoryMax?: number | undefined;
  /** seconds of CPU time (RLIMIT_CPU) */
  readonly cpuTimeSec?: number | undefined;
  /** niceness 0..19 */
  readonly nice?: number | undefined;
}

export type LimitMechanism = 'none' | 'systemd' | 'prlimit' | 'ulimit';

export function which(cmd: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const dir of (env.PATH ?? '/usr/bin:/bin').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, cmd);
    if (existsSync(p)) return p;
  }
  return undefined;
}

let systemdUser: boolean | undefined;
/** Does a user systemd answer? One quick probe, only when limits were asked for. */
function systemdAvailable(env: NodeJS.ProcessEnv): boolean {
  if (systemdUser !== undefined) return systemdUser;
  if (!which('systemd-run', env)) return (systemdUser = false);
  const r = spawnSync('systemd-run', ['--user', '--scope', '--quiet', '--', 'true'], { stdio: 'ignore', timeout: 3000, env });
  return (systemdUser = r.status === 0);
}

/**
 * The argv prefix that applies the limits, and which mechanism it uses: a systemd scope
 * (cgroup: memory is a real cap, OOM is reported) when a user systemd answers, else prlimit,
 * else the shell's ulimit.
 */
export function limitPrefix(l: Limits, env: NodeJS.ProcessEnv = process.env): { prefix: string[]; mechanism: LimitMechanism } {
  const nice = l.nice !== undefined && l.nice !== 0 ? ['nice', '-n', String(l.nice)] : [];
  if (l.memoryMax === undefined && l.cpuTimeSec === undefined) return { prefix: nice, mechanism: 'none' };
  if (systemdAvailable(env)) {
    const props: string[] = [];
    if (l.memoryMax !== undefined) props.push('-p', `MemoryMax=${l.memoryMax}`, '-p', 'MemorySwapMax=0');
    if (l.cpuTimeSec !== undefined) props.push('-p', `LimitCPU=${l.cpuTimeSec}`);
    return { prefix: ['systemd-run', '--user', '--scope', '--quiet', ...props, '--', ...nice], mechanism: 'systemd' };
  }
  if (which('prlimit', env)) {
    const opts: string[] = [];
    if (l.memoryMax !== undefined) opts.push(`--as=${l.memoryMax}`);
    if (l.cpuTimeSec !== undefined) opts.push(`--cpu=${l.cpuTimeSec}`);
    return { prefix: ['prlimit', ...opts, '--', ...nice], mechanism: 'prlimit' };
  }
  const ul: string[] = [];
  if (l.memoryMax !== undefined) ul.push(`ulimit -v ${Math.floor(l.memoryMax / 1024)}`);
  if (l.cpuTimeSec !== undefined) ul.push(`ulimit -t ${l.cpuTimeSec}`);
  return { prefix: ['/bin/sh', '-c', `${ul.join(' && ')} && exec "$@"`, 'agentctl-limits', ...nice], mechanism: 'ulimit' };
}

/**
 * The detached supervisor, /bin/sh reading this script on its standard input, so that its
 * command line is only `agentctl-supervise -s RUN_ID`: a supervisor whose argv carried the
 * child's (as it once did) matched the agent patterns, was counted twice and was reaped as an
 * orphan. Its parameters come in AGENTCTL_SUP_* variables, the child's argv as
 * AGENTCTL_SUP_ARGC and AGENTCTL_SUP_ARG_<i>; it unsets them all before starting the child.
 *
 * - `put` writes a file in the state folder only where nothing is (no file, link, FIFO or
 *   device: dash's `set -C` alone would still open a non-regular target), new under `set -C`,
 *   0600 (a subshell's umask, so the child keeps the caller's). Something planted there makes
 *   the write skipped, never written through; reconcile then records what else it knows.
 * - `setsid --`: a command whose argv[0] starts with `-` is the command, not an option.
 * - `setsid` gives the child its own session and process group (its PID is the group id), so
 *   ending the group never reaches this supervisor, which then records the exit status. Only
 *   the child carries AGENTCTL_RUN_ID: a sweep by run id never takes the supervisor with it.
 * - Once the child has the log as its stdout and stderr, the supervisor lets go of both: the
 *   log is the worker's, and the shell's own words ("Terminated" when a wait ends by a
 *   signal) must not land in it.
 * - The child's PID goes to runs/RUN_ID.child first, then to the spawner on fd 3 from a
 *   subshell, as `RUN_ID CHILD_PID SUPERVISOR_PID` (one pipe serves all the supervisors a
 *   forker starts): a spawner killed meanwhile costs that subshell a SIGPIPE, not the
 *   supervisor, and reconcile adopts the run from the file.
 * - The watchdog's last command is not its last statement, so dash cannot exec it in place of
 *   the subshell: `$dog` stays the subshell, and a TERM to it also ends its `sleep`.
 * - The exit status is written in one write to a new file; a reader that finds it empty waits
 *   for the next reconcile (the supervisor is still alive then).
 * - Its second line is the supervisor's /proc/<pid>/stat read right after `wait`: its cutime +
 *   cstime is then the child tree's CPU time (runs/usage.ts), read before the watchdog (whose
 *   _end-run must not count) and the capper are reaped. `read` is a regular builtin: without /proc it fails,
 *   the shell goes on, and the line stays empty.
 * - A run of a fleet-capped group: once the exit is recorded, `agentctl _fleet-sync` records it
 *   and gives the run's fleet lease back, so the fleet-wide slot frees with the local one.
 * - The capper, a subshell, keeps the log under `spawn.log_max` while the child runs, with no
 *   agentctl command needed: past the cap, the newest half goes to `<log>.prev` (written new,
 *   renamed into place) and the log is emptied (the child writes with O_APPEND). It looks every
 *   second, and up to every 16 s while the log grows slowly; it ends with the child (and is
 *   ended by the supervisor, which caps once more before recording the exit).
 * - A run under a restart policy (`spawn -d --restart`): once the exit is recorded, the
 *   supervisor asks `agentctl _restart RUN_ID` (a short-lived node process) what to do. It
 *   replies `sleep S` (the backoff the policy engine gave, or a poll while the caps are full)
 *   or `done` (restarted: a new supervisor runs the new run; given up; stopped). Between
 *   asks only this shell and its `sleep` are left, in the process group the shell leads:
 *   `stop` ends that group once it has proved the shell's identity. Only a reply of digits
 *   and a dot is slept on; anything else ends it. A failed ask (the state locked past the busy
 *   timeout, a full disk) is tried again 5 s later, three times; after that the shell ends and
 *   the next reconcile anywhere gives the restart up into the dead-letter queue, with an event
 *   (runs/restarts.ts): a policy never ends without a word.
 * - The agentctl commands it runs (`_end-run`, `_fleet-sync`, `_restart`) run in the spawner's
 *   folder with the spawner's --config, so they read the config the spawner read; in the run's
 *   folder they would read that folder's agentctl.toml (its caps, its hooks) instead.
 */
export const SUPERVISOR_SCRIPT = `set -C
runid=$1
exitfile=$AGENTCTL_SUP_EXIT; marker=$AGENTCTL_SUP_MARKER; childfile=$AGENTCTL_SUP_CHILD; timeout=$AGENTCTL_SUP_TIMEOUT
name=$AGENTCTL_SUP_NAME; node=$AGENTCTL_SUP_NODE; bin=$AGENTCTL_SUP_BIN; statedir=$AGENTCTL_SUP_STATEDIR; grace=$AGENTCTL_SUP_GRACE
log=$AGENTCTL_SUP_LOG; logmax=$AGENTCTL_SUP_LOGMAX; fleetsync=$AGENTCTL_SUP_FLEETSYNC; config=$AGENTCTL_SUP_CONFIG; restart=$AGENTCTL_SUP_RESTART; home=$AGENTCTL_SUP_HOME
n=$AGENTCTL_SUP_ARGC
set --
i=0
while [ "$i" -lt "$n" ]; do
  eval "set -- \\"\\$@\\" \\"\\$AGENTCTL_SUP_ARG_$i\\""
  unset "AGENTCTL_SUP_ARG_$i"
  i=$((i + 1))
done
unset AGENTCTL_SUP_EXIT AGENTCTL_SUP_MARKER AGENTCTL_SUP_CHILD AGENTCTL_SUP_TIMEOUT AGENTCTL_SUP_NAME AGENTCTL_SUP_NODE AGENTCTL_SUP_BIN AGENTCTL_SUP_STATEDIR AGENTCTL_SUP_GRACE AGENTCTL_SUP_ARGC AGENTCTL_SUP_LOG AGENTCTL_SUP_LOGMAX AGENTCTL_SUP_FLEETSYNC AGENTCTL_SUP_CONFIG AGENTCTL_SUP_RESTART AGENTCTL_SUP_HOME
AGENTCTL_RUN_ID=$runid AGENTCTL_NAME=$name setsid -- "$@" </dev/null 3>&- &
pid=$!
exec >/dev/null 2>&1
agentctl() (
  cd "$home" 2>/dev/null || cd / || exit 1
  if [ -n "$config" ]; then exec "$node" "$bin" --state-dir "$statedir" --config "$config" "$@"; fi
  exec "$node" "$bin" --state-dir "$statedir" "$@"
)
put() { [ -e "$1" ] || [ -L "$1" ] || ( umask 077; printf '%s\\n' "$2" > "$1" ); }
caplog() {
  size=0
  [ -f "$log" ] && [ ! -L "$log" ] || return 1
  size=$(wc -c < "$log") || return 1
  [ "$size" -gt "$logmax" ] || return 1
  rm -f "$log.prev.$$"
  ( umask 077; tail -c "$((logmax / 2))" "$log" > "$log.prev.$$" ) && mv -f "$log.prev.$$" "$log.prev" && : >| "$log"
  size=0
}
put "$childfile" "$pid"
( printf '%s %s %s\\n' "$runid" "$pid" "$$" >&3 ) 2>/dev/null
exec 3>&-
dog=
if [ "$timeout" != 0 ]; then
  (
    trap 'kill "$s" 2>/dev/null; exit 0' TERM
    sleep "$timeout" &
    s=$!
    wait "$s"
    if kill -0 "$pid" 2>/dev/null; then
      put "$marker" ""
      agentctl --quiet _end-run "$runid" --grace "$grace"
    fi
    exit 0
  ) </dev/null >/dev/null 2>&1 &
  dog=$!
fi
capper=
if [ "$logmax" != 0 ]; then
  (
    trap 'kill "$s" 2>/dev/null; exit 0' TERM
    i=1; last=0
    while kill -0 "$pid" 2>/dev/null; do
      sleep "$i" &
      s=$!
      wait "$s"
      if caplog; then i=1
      elif [ $(((size - last) * 4)) -lt $((logmax - size)) ]; then [ "$i" -ge 16 ] || i=$((i * 2))
      else i=1
      fi
      last=$size
    done
  ) </dev/null >/dev/null 2>&1 &
  capper=$!
fi
wait "$pid"
rc=$?
read -r usage </proc/$$/stat || usage=
if [ -n "$capper" ]; then kill "$capper" 2>/dev/null; wait "$capper" 2>/dev/null; caplog; fi
if [ -n "$dog" ]; then
  if [ -e "$marker" ]; then wait "$dog"; else kill "$dog" 2>/dev/null; wait "$dog" 2>/dev/null; fi
fi
put "$exitfile" "$rc
$usage"
touch -h -c "$statedir/${BELL_FILE}" 2>/dev/null
if [ "$fleetsync" = 1 ]; then agentctl --quiet _fleet-sync </dev/null >/dev/null 2>&1; fi
if [ "$restart" = 1 ]; then
  fails=0
  while :; do
    if ! reply=$(agentctl _restart "$runid" </dev/null 2>/dev/null); then
      fails=$((fails + 1))
      [ "$fails" -lt 4 ] && sleep 5 && continue
      break
    fi
    fails=0
    case $reply in "sleep "*) s=\${reply#sleep } ;; *) break ;; esac
    case $s in ''|*[!0-9.]*) break ;; esac
    sleep "$s" || break
  done
fi
`;

/**
 * Start the supervisor and the child; resolves with the child's PID once it is known.
 * `onSupervisor` runs synchronously as soon as the supervisor exists, before anything is
 * awaited, so the caller can record its identity in the same step that starts it.
 */
/** What a detached run's supervisor is given (startDetached). */
export interface SupervisorOptions {
  argv: readonly string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  logFd: number;
  exitFile: string;
  timeoutMarker: string;
  childFile: string;
  timeoutSec: number;
  /** the log the child writes, capped by the supervisor at logMax bytes (0: never) */
  log: string;
  logMax: number;
  /** a fleet-capped run: once the exit is recorded, run `agentctl _fleet-sync` to give its fleet lease back */
  fleetSync?: boolean;
  /** a run under a restart policy: once the exit is recorded, ask `agentctl _restart` and sleep as it says, until it says done */
  restart?: boolean;
  /** the --config the spawn was given, passed to the agentctl commands the supervisor runs */
  configPath?: string | undefined;
  /** the spawner's folder: the agentctl commands the supervisor runs look up the config from there, as the spawner did */
  configHome?: string | undefined;
  runId: string;
  name: string;
  /** node, agentctl's entry script, state dir, kill grace (e.g. "10000ms") */
  watchdog: readonly [string, string, string, string];
  onSupervisor?: (pid: number) => void;
  /** fork the supervisor from this forker (several starts at once) rather than from Node */
  forker?: Forker | undefined;
}

/**
 * A forker for a burst of detached starts (`up`), or undefined where there is no Perl or
 * AGENTCTL_NO_FORKER is set (each supervisor is then spawned from Node, as a single start's is).
 */
export const findForker = (env: NodeJS.ProcessEnv): Forker | undefined => {
  if (envOn(env.AGENTCTL_NO_FORKER)) return undefined;
  const native = nativeSupervisor(env);
  return native ? Forker.find('', undefined, native) : Forker.find(SUPERVISOR_SCRIPT);
};

/** The supervisor's environment: the caller's, its parameters, and the child's argv. */
function supervisorEnv(opts: SupervisorOptions): NodeJS.ProcessEnv {
  const [node, bin, statedir, grace] = opts.watchdog;
  const env: NodeJS.ProcessEnv = {
    ...opts.env,
    AGENTCTL_SUP_EXIT: opts.exitFile,
    AGENTCTL_SUP_MARKER: opts.timeoutMarker,
    AGENTCTL_SUP_CHILD: opts.childFile,
    AGENTCTL_SUP_TIMEOUT: String(opts.timeoutSec),
    AGENTCTL_SUP_NAME: opts.name,
    AGENTCTL_SUP_NODE: node,
    AGENTCTL_SUP_BIN: bin,
    AGENTCTL_SUP_STATEDIR: statedir,
    AGENTCTL_SUP_GRACE: grace,
    AGENTCTL_SUP_ARGC: String(opts.argv.length),
    AGENTCTL_SUP_LOG: opts.log,
    AGENTCTL_SUP_LOGMAX: String(opts.logMax),
    AGENTCTL_SUP_FLEETSYNC: opts.fleetSync ? '1' : '0',
    AGENTCTL_SUP_CONFIG: opts.configPath ?? '',
    AGENTCTL_SUP_HOME: opts.configHome ?? '/',
    AGENTCTL_SUP_RESTART: opts.restart ? '1' : '0',
  };
  opts.argv.forEach((a, i) => (env[`AGENTCTL_SUP_ARG_${i}`] = a));
  return env;
}

/**
 * Start the supervisor and the child; resolves with the child's PID once it is known.
 * `onSupervisor` runs as soon as the supervisor's PID is known: from Node's spawn,
 * synchronously, before anything is awaited, so the caller can record its identity in the
 * step that starts it; from a forker, when its line arrives (forker.ts).
 */
export function startDetached(opts: SupervisorOptions): Promise<DetachedStart> {
  const env = supervisorEnv(opts);
  if (opts.forker) {
    // a forker that started nothing for this run (a perl that does not run, a /proc it cannot
    // read) leaves it to Node's spawn
    return opts.forker
      .start({ runId: opts.runId, cwd: opts.cwd, env, logFd: opts.logFd, onSupervisor: opts.onSupervisor })
      .catch((err: unknown) => (err instanceof NotForked ? spawnSupervisor(opts, env) : Promise.reject(err as Error)));
  }
  return spawnSupervisor(opts, env);
}

/**
 * The supervisor spawned from Node: the compiled one (native.ts), or /bin/sh reading the
 * script, also when the compiled one cannot be executed (built for another machine, say).
 */
function spawnSupervisor(opts: SupervisorOptions, env: NodeJS.ProcessEnv, shell = false): Promise<DetachedStart> {
  const native = shell ? undefined : nativeSupervisor(opts.env);
  return new Promise((resolve, reject) => {
    // a compiled supervisor that could not be executed is given up for the shell, once
    const toShell = () => {
      distrustNativeSupervisor();
      spawnSupervisor(opts, env, true).then(resolve, reject);
    };
    let sup: ReturnType<typeof spawn>;
    try {
      sup = spawn(native ?? '/bin/sh', ['-s', opts.runId], {
        argv0: SUPERVISOR_ARGV0,
        cwd: opts.cwd,
        env,
        detached: true,
        stdio: [native ? 'ignore' : 'pipe', opts.logFd, opts.logFd, 'pipe'],
      });
    } catch (err) {
      // some exec failures (ETXTBSY while a rebuild writes it) are thrown, not emitted
      if (!native) throw err;
      toShell();
      return;
    }
    // nothing started (no pid)
    sup.once('error', (err) => (native && sup.pid === undefined ? toShell() : reject(err)));
    if (sup.pid === undefined) return;
    let out = '';
    const pipe = sup.stdio[3] as NodeJS.ReadableStream;
    pipe.setEncoding('utf8');
    pipe.on('data', (d: string) => (out += d));
    opts.onSupervisor?.(sup.pid);
    // the whole script fits the pipe's buffer: it stays readable after we close or die
    sup.stdin?.on('error', () => {});
    sup.stdin?.end(SUPERVISOR_SCRIPT);
    pipe.once('end', () => {
      const m = /^\S+ (\d+) \d+\n$/.exec(out);
      const pid = m ? Number(m[1]) : NaN;
      if (!Number.isInteger(pid) || pid <= 0) {
        reject(new UnsureStart(`supervisor did not report a PID (got ${JSON.stringify(out)})`));
        return;
      }
      sup.unref();
      resolve({ pid, supervisorPid: sup.pid! });
    });
  });
}

/** An admitted run, its ports proven free, ready to start (detached.ts, foreground.ts). */
export interface Launch {
  readonly runId: string;
  /** a half-open breaker's trial run */
  readonly trial: boolean;
  readonly waitedMs: number;
  readonly mechanism: LimitMechanism;
  /** the command behind its limit prefix */
  readonly argv: readonly string[];
  readonly ports: readonly number[];
  /** PORT, PORT_<n>, AGENTCTL_PORTS and AGENTCTL_ENV, for the child */
  readonly portEnv: Readonly<Record<string, string>>;
}
