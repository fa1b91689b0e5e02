/**
 * Starting the child: resource limits through the best mechanism present, and for detached
 * runs a /bin/sh supervisor (about 1 MB) that waits for the child and records its exit status
 * in a file the next agentctl command reads. A Node process per agent would cost 40 MB.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { BELL_FILE } from './bell.js';

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
 * The detached supervisor, /bin/sh. Positional arguments: exit file, timeout marker, timeout
 * seconds (0 = none), run id, name, then node, agentctl's entry script, state dir and kill
 * grace for the timeout watchdog, then the command. Every value stays one argument, so paths
 * with spaces are safe.
 * `setsid` gives the child its own session and process group (its PID is the group id), so
 * ending the group never reaches this supervisor, which then records the exit status. Only
 * the child carries AGENTCTL_RUN_ID: a sweep by run id never takes the supervisor with it.
 * The watchdog's last command is not its last statement, so dash cannot exec it in place
 * of the subshell: `$dog` stays the subshell, and a TERM to it also ends its `sleep`.
 */
export const SUPERVISOR_SCRIPT = `exitfile=$1; marker=$2; timeout=$3; runid=$4; name=$5; node=$6; bin=$7; statedir=$8; grace=$9; shift 9
AGENTCTL_RUN_ID=$runid AGENTCTL_NAME=$name setsid "$@" </dev/null 3>&- &
pid=$!
echo "$pid" >&3
exec 3>&-
dog=
if [ "$timeout" != 0 ]; then
  (
    trap 'kill "$s" 2>/dev/null; exit 0' TERM
    sleep "$timeout" &
    s=$!
    wait "$s"
    if kill -0 "$pid" 2>/dev/null; then
      : > "$marker"
      "$node" "$bin" --state-dir "$statedir" --quiet _end-run "$runid" --grace "$grace"
    fi
    exit 0
  ) </dev/null >/dev/null 2>&1 &
  dog=$!
fi
wait "$pid"
rc=$?
if [ -n "$dog" ]; then
  if [ -e "$marker" ]; then wait "$dog"; else kill "$dog" 2>/dev/null; wait "$dog" 2>/dev/null; fi
fi
printf '%s\\n' "$rc" > "$exitfile.tmp" && mv "$exitfile.tmp" "$exitfile"
touch -c "$statedir/${BELL_FILE}" 2>/dev/null
`;

export interface DetachedStart {
  readonly pid: number;
  readonly supervisorPid: number;
}

/** Start the supervisor and the child; resolves with the child's PID once it is known. */
export function startDetached(opts: {
  argv: readonly string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  logFd: number;
  exitFile: string;
  timeoutMarker: string;
  timeoutSec: number;
  runId: string;
  name: string;
  /** node, agentctl's entry script, state dir, kill grace (e.g. "10000ms") */
  watchdog: readonly [string, string, string, string];
}): Promise<DetachedStart> {
  return new Promise((resolve, reject) => {
    const sup = spawn('/bin/sh', ['-c', SUPERVISOR_SCRIPT, 'agentctl-supervise', opts.exitFile, opts.timeoutMarker, String(opts.timeoutSec), opts.runId, opts.name, ...opts.watchdog, ...opts.argv], {
      cwd: opts.cwd,
      env: opts.env,
      detached: true,
      stdio: ['ignore', opts.logFd, opts.logFd, 'pipe'],
    });
    let out = '';
    const pipe = sup.stdio[3] as NodeJS.ReadableStream;
    pipe.setEncoding('utf8');
    pipe.on('data', (d: string) => (out += d));
    sup.once('error', reject);
    pipe.once('end', () => {
      const pid = Number.parseInt(out.trim(), 10);
      if (!Number.isInteger(pid) || pid <= 0) {
        reject(new Error(`supervisor did not report a PID (got ${JSON.stringify(out)})`));
        return;
      }
      sup.unref();
      resolve({ pid, supervisorPid: sup.pid! });
    });
  });
}
