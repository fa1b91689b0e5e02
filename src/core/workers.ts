/**
 * Worker identity, for dedupe-workers: what a command line runs, without interpreter, folder,
 * version suffix or daemon flags. `python3 /opt/w/auto_confirm_worker_v2.py --daemon` and
 * `sh -c './auto_confirm_worker.py --daemon; echo'` are the same worker (incident 2).
 * Pure functions: inputs in, identity out.
 */
import { basename } from 'node:path';

const INTERPRETER = /^(node|nodejs|bun|deno|python[\d.]*|pypy[\d.]*|ruby|perl|php|bash|sh|dash|zsh|env|uv|uvx|npx|tsx|ts-node)$/;
const SHELL = /^(bash|sh|dash|zsh)$/;
const SCRIPT_EXT = /\.(py|js|mjs|cjs|ts|sh|bash|rb|pl|php)$/;
/** Flags that say how a worker runs, not which worker it is. */
const DAEMON_FLAGS = new Set(['--daemon', '-d', '--daemonize', '--detach', '--background', '--foreground', '--no-daemon', '-D', '--fork', '--nodaemon']);

export interface WorkerId {
  /** the identity key: base name + extension + the arguments that matter */
  readonly key: string;
  /** the script or program, version suffix removed, e.g. auto_confirm_worker.py */
  readonly base: string;
  /** the version the suffix gave (`_v2` -> 2), 1 when there is none */
  readonly version: number;
  /** the script or program as written, e.g. auto_confirm_worker_v2.py */
  readonly program: string;
  /** true when an interpreter runs a script (the default scope of dedupe-workers) */
  readonly script: boolean;
}

/** Split a `sh -c` string into words of its first command (quotes respected, stops at ; & | newline). */
export function firstCommandWords(text: string): string[] {
  const words: string[] = [];
  let cur = '';
  let quote: string | null = null;
  let started = false;
  for (const ch of text) {
    if (quote) {
      if (ch === quote) quote = null;
      else cur += ch;
      continue;
    }
    if (ch === '"' || ch === "'") {
      quote = ch;
      started = true;
      continue;
    }
    if (/[;&|\n]/.test(ch)) break;
    if (/\s/.test(ch)) {
      if (started) words.push(cur);
      cur = '';
      started = false;
      continue;
    }
    cur += ch;
    started = true;
  }
  if (started) words.push(cur);
  // `exec cmd` and leading VAR=value assignments do not change what runs
  while (words.length && (words[0] === 'exec' || /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[0]!))) words.shift();
  return words;
}

/** Strip a version suffix: worker_v2.py -> (worker.py, 2); worker-v3 -> (worker, 3); worker2.py -> (worker.py, 2). */
export function splitVersion(name: string): { base: string; version: number } {
  const dot = name.lastIndexOf('.');
  const ext = dot > 0 && /^\.[A-Za-z]{1,5}$/.test(name.slice(dot)) ? name.slice(dot) : '';
  const stem = ext ? name.slice(0, -ext.length) : name;
  // _v2 -v2 .v2 v2, or digits right after a letter (worker2); shard_1 is a different worker, not v1
  const m = /^(.*?[A-Za-z])(?:[_.-]v(\d{1,4})|v(\d{1,4})|(\d{1,4}))$/.exec(stem);
  if (!m) return { base: name, version: 1 };
  const v = Number(m[2] ?? m[3] ?? m[4]);
  return { base: `${m[1]}${ext}`, version: v };
}

/** The identity of what `argv` runs. */
export function workerId(argv: readonly string[]): WorkerId | undefined {
  if (argv.length === 0) return undefined;
  let words = [...argv];
  // unwrap interpreters and `sh -c '...'` until we reach the script or program
  for (let depth = 0; depth < 6; depth++) {
    const first = basename(words[0] ?? '');
    if (!INTERPRETER.test(first)) break;
    let i = 1;
    while (i < words.length && words[i]!.startsWith('-') && words[i] !== '-c' && words[i] !== '-m') i++;
    if (words[i] === '-c') {
      if (!SHELL.test(first)) return { key: `${first} -c`, base: first, version: 1, program: first, script: false };
      words = firstCommandWords(words[i + 1] ?? '');
      continue;
    }
    if (words[i] === '-m') {
      words = [words[i + 1] ?? first, ...words.slice(i + 2)];
      const mod = words[0]!;
      const { base, version } = splitVersion(mod);
      return { key: [`-m ${base}`, ...args(words.slice(1))].join(' '), base, version, program: mod, script: true };
    }
    if (i >= words.length) return { key: first, base: first, version: 1, program: first, script: false };
    // a script fed through a file descriptor (bash /dev/fd/3, process substitution) has no name to compare
    if (/^\/(dev|proc)\//.test(words[i]!)) return { key: `${first} ${words[i]}`, base: first, version: 1, program: first, script: false };
    words = words.slice(i);
    // env python3 x.py, uv run x.py: keep unwrapping while the next word is another runner
    if (INTERPRETER.test(basename(words[0]!))) continue;
    if (first === 'uv' && words[0] === 'run') {
      words = words.slice(1);
      continue;
    }
    const program = basename(words[0]!);
    const { base, version } = splitVersion(program);
    return { key: [base, ...args(words.slice(1))].join(' '), base, version, program, script: true };
  }
  if (words.length === 0) return undefined;
  const program = basename(words[0]!);
  const { base, version } = splitVersion(program);
  // a script run directly through its shebang is still a script
  return { key: [base, ...args(words.slice(1))].join(' '), base, version, program, script: SCRIPT_EXT.test(program) };
}

function args(rest: readonly string[]): string[] {
  return rest.filter((a) => !DAEMON_FLAGS.has(a));
}

export interface ProcLite {
  readonly pid: number;
  readonly ppid: number;
  /** start time, comparable between processes of one boot (clock ticks since boot) */
  readonly start: number;
  readonly argv: readonly string[];
}

export interface Instance {
  /** the instance's root: a wrapper shell, or the worker itself */
  readonly pid: number;
  readonly id: WorkerId;
  readonly start: number;
  /** processes of this instance (the root and any same-identity descendants) */
  readonly pids: readonly number[];
}

export type KeepPolicy = 'highest-version' | 'newest' | 'oldest';

/**
 * Group processes into instances by identity key, ignoring versions: a process whose parent
 * has the same key belongs to the parent's instance (a wrapper and its child are one). The
 * group key is the base identity, so worker.py and worker_v2.py compete.
 */
export function groupInstances(procs: readonly ProcLite[], include: (p: ProcLite, id: WorkerId) => boolean): Map<string, Instance[]> {
  const ids = new Map<number, WorkerId>();
  for (const p of procs) {
    const id = workerId(p.argv);
    if (id && include(p, id)) ids.set(p.pid, id);
  }
  const byPid = new Map(procs.map((p) => [p.pid, p]));
  const rootOf = (pid: number): number => {
    let cur = pid;
    for (let i = 0; i < 16; i++) {
      const parent = byPid.get(cur)?.ppid;
      if (parent === undefined || !ids.has(parent) || ids.get(parent)!.key !== ids.get(pid)!.key) return cur;
      cur = parent;
    }
    return cur;
  };
  const instances = new Map<number, { pids: number[] }>();
  for (const pid of ids.keys()) {
    const root = rootOf(pid);
    (instances.get(root) ?? instances.set(root, { pids: [] }).get(root)!).pids.push(pid);
  }
  const groups = new Map<string, Instance[]>();
  for (const [root, { pids }] of instances) {
    const id = ids.get(root)!;
    const groupKey = id.key;
    const inst: Instance = { pid: root, id, start: byPid.get(root)!.start, pids: pids.sort((a, b) => a - b) };
    (groups.get(groupKey) ?? groups.set(groupKey, []).get(groupKey)!).push(inst);
  }
  return groups;
}

/** Which instance to keep; the rest are duplicates. Default: highest version, then newest. */
export function pickKeeper(instances: readonly Instance[], keep: KeepPolicy): Instance {
  const sorted = [...instances].sort((a, b) => {
    if (keep === 'oldest') return a.start - b.start || a.pid - b.pid;
    if (keep === 'newest') return b.start - a.start || b.pid - a.pid;
    return b.id.version - a.id.version || b.start - a.start || b.pid - a.pid;
  });
  return sorted[0]!;
}

/**
 * Could a process with this kernel name (comm, at most 15 characters) be running a script?
 * True for interpreters, names with an extension, and names cut at 15 characters. Lets
 * dedupe-workers skip reading the command line of the thousands of processes that cannot be.
 */
export function mayRunScript(comm: string): boolean {
  return INTERPRETER.test(comm.replace(/[\d.]+$/, '')) || INTERPRETER.test(comm) || comm.includes('.') || comm.length >= 15;
}
