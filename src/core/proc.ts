/**
 * The process table. On Linux we read /proc directly: a readdir and one small read per
 * process. Elsewhere ps-list (one `ps` call). Never systeminformation's per-process calls,
 * which take seconds on a busy host.
 */
import { closeSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { importEsm } from './esm.js';

export interface ProcInfo {
  readonly pid: number;
  /** argv as the process reports it; empty for kernel threads and zombies. */
  readonly argv: readonly string[];
  /** argv joined by spaces. */
  readonly cmdline: string;
}

/** Interpreters whose first script argument names the program that really runs. */
const INTERPRETERS = /^(node|nodejs|bun|deno|python[\d.]*|pypy[\d.]*|ruby|perl|php|bash|sh|dash|zsh|env|uv|npx|tsx|ts-node)$/;

/** The program a command line runs: argv[0]'s basename, or the script's for an interpreter. */
export function programName(argv: readonly string[]): string {
  const first = argv[0] ? basename(argv[0]) : '';
  if (!INTERPRETERS.test(first)) return first;
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-c' || a === '-m' || a === '-e') return argv[i + 1] !== undefined ? basename(argv[i + 1]!.split(/\s+/)[0]!) : first;
    if (!a.startsWith('-')) return basename(a);
  }
  return first;
}

/** argv[0] of every detached supervisor; with `-s RUN_ID` it is all its command line shows. */
export const SUPERVISOR_ARGV0 = 'agentctl-supervise';

const RUN_ID_RE = /^r[0-9a-z]{6,20}$/;

/**
 * Is this command line a detached run's supervisor (`agentctl-supervise -s RUN_ID`)? Returns
 * the run id, or undefined. Supervisors are never agents, orphans or duplicates: their own
 * command line is short, and the child's command is read from the state, not from theirs.
 * Anyone can name a process so; that only hides it from agent counts, it never gets it
 * signalled, and adopting a run checks the supervisor's owner and the child's environment.
 */
export function supervisorRunId(argv: readonly string[]): string | undefined {
  return argv.length === 3 && argv[0] === SUPERVISOR_ARGV0 && argv[1] === '-s' && RUN_ID_RE.test(argv[2]!) ? argv[2] : undefined;
}

/** One buffer reused for every small /proc read: no fstat, no allocation per process. */
let scratch = Buffer.allocUnsafe(64 * 1024);

/**
 * Read a /proc file whole, or undefined when the process is gone. /proc files report size 0,
 * so readFileSync's fstat-then-read is wasted work; with 5,000 processes this is the hot loop.
 */
export function readProcFile(path: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return undefined;
  }
  try {
    let len = 0;
    for (;;) {
      const n = readSync(fd, scratch, len, scratch.length - len, null);
      if (n === 0) break;
      len += n;
      if (len === scratch.length) {
        const bigger = Buffer.allocUnsafe(scratch.length * 2);
        scratch.copy(bigger);
        scratch = bigger;
      }
    }
    return scratch.toString('latin1', 0, len);
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** The PID folders under /proc (Linux); empty when /proc cannot be read. */
export function procPids(procRoot = '/proc'): string[] {
  let names: string[];
  try {
    names = readdirSync(procRoot);
  } catch {
    return [];
  }
  return names.filter((n) => {
    const c = n.charCodeAt(0);
    return c >= 48 && c <= 57;
  });
}

/** List processes with their command lines (Linux: /proc). Kernel threads are skipped. */
export function listProcessesLinux(procRoot = '/proc'): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of procPids(procRoot)) {
    const pid = Number(name);
    const raw = readProcFile(`${procRoot}/${name}/cmdline`);
    if (raw === undefined) continue; // exited meanwhile
    if (raw === '') continue; // kernel thread or zombie
    const argv = raw.endsWith('\0') ? raw.slice(0, -1).split('\0') : raw.split('\0');
    out.push({ pid, argv, cmdline: argv.join(' ') });
  }
  return out;
}

export async function listProcesses(): Promise<ProcInfo[]> {
  if (process.platform === 'linux') return listProcessesLinux();
  const { default: psList } = await importEsm<typeof import('ps-list')>('ps-list');
  const list = await psList({ all: true });
  return list.map((p) => {
    const cmd = p.cmd ?? p.name;
    const argv = cmd.split(/\s+/).filter(Boolean);
    return { pid: p.pid, argv, cmdline: cmd };
  });
}

export interface AgentCounts {
  /** processes whose command line matches the configured claude pattern */
  readonly claude: number;
  /** processes whose program is node (argv[0] is node or nodejs) */
  readonly node: number;
  /** processes matching any configured agent pattern */
  readonly agents: number;
  /** pids of the agents, for callers that need them */
  readonly agentPids: readonly number[];
}

/** Count agents in a process list. `selfPid` (agentctl itself) and detached runs' supervisors are never counted. */
export function countAgents(procs: readonly ProcInfo[], patterns: { readonly patterns: readonly string[]; readonly claude: string }, selfPid = process.pid): AgentCounts {
  const agentRes = patterns.patterns.map((p) => new RegExp(p));
  const claudeRe = new RegExp(patterns.claude);
  let claude = 0;
  let node = 0;
  const agentPids: number[] = [];
  for (const p of procs) {
    if (p.pid === selfPid || supervisorRunId(p.argv) !== undefined) continue;
    const argv0 = p.argv[0] ? basename(p.argv[0]) : '';
    if (argv0 === 'node' || argv0 === 'nodejs') node++;
    if (claudeRe.test(p.cmdline)) claude++;
    if (agentRes.some((re) => re.test(p.cmdline))) agentPids.push(p.pid);
  }
  return { claude, node, agents: agentPids.length, agentPids };
}

export interface ProcDetail extends ProcInfo {
  readonly ppid: number;
  readonly pgid: number;
  readonly state: string;
  readonly uid: number | undefined;
  /** start time in clock ticks since boot */
  readonly startTicks: number;
  /** user + system CPU ticks so far */
  readonly cpuTicks: number;
  readonly comm: string;
}

/**
 * The process table with parent, group, state, owner and CPU (Linux /proc). Zombies are
 * included (empty argv) so they can be reported; kernel threads (children of kthreadd) are not.
 */
export function listDetailed(procRoot = '/proc', opts: { argv?: boolean | ((comm: string) => boolean) } = {}): ProcDetail[] {
  const wantArgv = opts.argv ?? true;
  const out: ProcDetail[] = [];
  for (const name of procPids(procRoot)) {
    const statText = readProcFile(`${procRoot}/${name}/stat`);
    if (!statText) continue;
    const open = statText.indexOf('(');
    const close = statText.lastIndexOf(')');
    if (open < 0 || close < 0) continue;
    const f = statText.slice(close + 2).split(' ');
    const ppid = Number(f[1]);
    if (ppid === 2 || Number(name) === 2) continue; // kernel threads
    // the command line is a second read per process: skip it when the caller needs none
    const comm = statText.slice(open + 1, close);
    const read = typeof wantArgv === 'function' ? wantArgv(comm) : wantArgv;
    const raw = read ? (readProcFile(`${procRoot}/${name}/cmdline`) ?? '') : '';
    const argv = raw === '' ? [] : (raw.endsWith('\0') ? raw.slice(0, -1) : raw).split('\0');
    let uid: number | undefined;
    try {
      uid = statSync(`${procRoot}/${name}`).uid;
    } catch {
      uid = undefined;
    }
    out.push({
      pid: Number(name),
      argv,
      cmdline: argv.join(' '),
      ppid,
      pgid: Number(f[2]),
      state: f[0] ?? '?',
      uid,
      startTicks: Number(f[19]),
      cpuTicks: Number(f[11]) + Number(f[12]),
      comm,
    });
  }
  return out;
}

/** All descendants of `pid` in a process table (children, grandchildren ...). */
export function descendants(procs: readonly ProcDetail[], pid: number): number[] {
  const kids = new Map<number, number[]>();
  for (const p of procs) (kids.get(p.ppid) ?? kids.set(p.ppid, []).get(p.ppid)!).push(p.pid);
  const out: number[] = [];
  const stack = [...(kids.get(pid) ?? [])];
  while (stack.length) {
    const x = stack.pop()!;
    out.push(x);
    stack.push(...(kids.get(x) ?? []));
  }
  return out;
}

/**
 * Is every user id of the process (real, effective, saved, filesystem) this user's? The owner
 * of /proc/PID alone is root for the process of a setuid program, whoever started it: as root,
 * that would take another user's `su` for ours.
 */
export function ownedByUs(pid: number): boolean {
  const me = process.geteuid?.();
  const m = /^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/m.exec(readProcFile(`/proc/${pid}/status`) ?? '');
  return me !== undefined && m !== null && m.slice(1).every((u) => Number(u) === me);
}

/** The user id a process runs as (Linux: the owner of /proc/PID), or undefined. */
export function processUid(pid: number): number | undefined {
  try {
    return statSync(`/proc/${pid}`).uid;
  } catch {
    return undefined;
  }
}
