/**
 * Worker identity, for dedupe-workers and doctor: what a command line runs, without
 * interpreter, version suffix or daemon flags, in the script's real folder.
 * `python3 /opt/w/auto_confirm_worker_v2.py --daemon` and `sh -c './auto_confirm_worker.py
 * --daemon; echo'` run from /opt/w are the same worker (incident 2); `projA/server.py` and
 * `projB/server.py` are two, and so are `app.py` and `app2.py`.
 * Pure functions: inputs in, identity out. The caller gathers each process's cwd and passes a
 * realpath function; nothing here touches the file system.
 */
import { basename, dirname, isAbsolute, resolve } from 'node:path';
import { supervisorRunId } from './proc.js';

const INTERPRETER = /^(node|nodejs|bun|deno|python[\d.]*|pypy[\d.]*|ruby|perl|php|bash|sh|dash|zsh|env|uv|uvx|npx|tsx|ts-node)$/;
const SHELL = /^(bash|sh|dash|zsh)$/;
const SCRIPT_EXT = /\.(py|js|mjs|cjs|ts|sh|bash|rb|pl|php)$/;
/** Flags that say how a worker runs, not which worker it is. */
const DAEMON_FLAGS = new Set(['--daemon', '-d', '--daemonize', '--detach', '--background', '--foreground', '--no-daemon', '-D', '--fork', '--nodaemon']);

export interface WorkerId {
  /** the key without its folder: base name + extension + the arguments that matter */
  readonly key: string;
  /**
   * The folder the script really lives in: absolute, symlinks resolved where the caller's
   * realpath could. `''` for a program found on PATH (no folder in its name). Undefined when
   * it cannot be known (a relative path and no cwd): such a process is never grouped with
   * another unless folders are ignored.
   */
  readonly folder: string | undefined;
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

/**
 * Strip a version suffix: a separator (`_`, `-`, `.`), `v` and 1-4 digits, before the
 * extension. worker_v2.py -> (worker.py, 2); worker-v3 -> (worker, 3); worker.v2.js ->
 * (worker.js, 2). Never bare digits (app2.py, p10.sh and shard_1.py are names of their own)
 * and never `v2` glued to a letter (dev2.py, worker2v.py): those are different programs.
 */
export function splitVersion(name: string): { base: string; version: number } {
  const dot = name.lastIndexOf('.');
  const ext = dot > 0 && /^\.[A-Za-z]{1,5}$/.test(name.slice(dot)) ? name.slice(dot) : '';
  const stem = ext ? name.slice(0, -ext.length) : name;
  const m = /^(.+?)[_.-]v(\d{1,4})$/.exec(stem);
  if (!m) return { base: name, version: 1 };
  return { base: `${m[1]}${ext}`, version: Number(m[2]) };
}

/** Where a process runs from: what workerId needs to find a script's real folder. */
export interface Place {
  /** the process's working folder (readlink /proc/PID/cwd); relative script paths resolve against it */
  readonly cwd?: string | undefined;
  /** resolves the symlinks of an absolute path; undefined when it cannot (unreadable, gone). @default none resolved */
  readonly realpath?: ((abs: string) => string | undefined) | undefined;
}

/** The real folder of a script named `written` (as on the command line); see WorkerId.folder. */
export function scriptFolder(written: string, place: Place = {}): string | undefined {
  const cwd = place.cwd !== undefined && isAbsolute(place.cwd) ? place.cwd : undefined;
  const abs = isAbsolute(written) ? resolve(written) : cwd !== undefined ? resolve(cwd, written) : undefined;
  if (abs === undefined) return undefined;
  const real = place.realpath?.(abs);
  if (real !== undefined) return dirname(real);
  const dir = dirname(abs);
  return place.realpath?.(dir) ?? dir;
}

/** The real folder of the cwd itself (for `python3 -m NAME`, which imports from there). */
function cwdFolder(place: Place): string | undefined {
  if (place.cwd === undefined || !isAbsolute(place.cwd)) return undefined;
  const dir = resolve(place.cwd);
  return place.realpath?.(dir) ?? dir;
}

/** The identity of what `argv` runs, from the folder `place` gives (see Place). */
export function workerId(argv: readonly string[], place: Place = {}): WorkerId | undefined {
  // a detached run's supervisor is never a worker, so never anyone's duplicate
  if (argv.length === 0 || supervisorRunId(argv) !== undefined) return undefined;
  let words = [...argv];
  // unwrap interpreters and `sh -c '...'` until we reach the script or program
  for (let depth = 0; depth < 6; depth++) {
    const first = basename(words[0] ?? '');
    if (!INTERPRETER.test(first)) break;
    let i = 1;
    while (i < words.length && words[i]!.startsWith('-') && words[i] !== '-c' && words[i] !== '-m') i++;
    if (words[i] === '-c') {
      if (!SHELL.test(first)) return { key: `${first} -c`, folder: cwdFolder(place), base: first, version: 1, program: first, script: false };
      words = firstCommandWords(words[i + 1] ?? '');
      continue;
    }
    if (words[i] === '-m') {
      words = [words[i + 1] ?? first, ...words.slice(i + 2)];
      const mod = words[0]!;
      const { base, version } = splitVersion(mod);
      return { key: [`-m ${base}`, ...args(words.slice(1))].join(' '), folder: cwdFolder(place), base, version, program: mod, script: true };
    }
    if (i >= words.length) return { key: first, folder: cwdFolder(place), base: first, version: 1, program: first, script: false };
    // a script fed through a file descriptor (bash /dev/fd/3, process substitution) has no name to compare
    if (/^\/(dev|proc)\//.test(words[i]!)) return { key: `${first} ${words[i]}`, folder: cwdFolder(place), base: first, version: 1, program: first, script: false };
    words = words.slice(i);
    // env python3 x.py, uv run x.py: keep unwrapping while the next word is another runner
    if (INTERPRETER.test(basename(words[0]!))) continue;
    if (first === 'uv' && words[0] === 'run') {
      words = words.slice(1);
      continue;
    }
    // an interpreter's script argument is a path: relative to the cwd even without a slash
    const program = basename(words[0]!);
    const { base, version } = splitVersion(program);
    return { key: [base, ...args(words.slice(1))].join(' '), folder: scriptFolder(words[0]!, place), base, version, program, script: true };
  }
  if (words.length === 0) return undefined;
  const program = basename(words[0]!);
  const { base, version } = splitVersion(program);
  // a name without a slash was found on PATH; a script run directly through its shebang is still a script
  const folder = words[0]!.includes('/') ? scriptFolder(words[0]!, place) : '';
  return { key: [base, ...args(words.slice(1))].join(' '), folder, base, version, program, script: SCRIPT_EXT.test(program) };
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
  /** its working folder (readlink /proc/PID/cwd), when known; see GroupOptions.cwdOf */
  readonly cwd?: string | undefined;
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

export interface GroupOptions {
  /** compare names only, not folders: projA/server.py and projB/server.py become one worker. @default false */
  readonly acrossFolders?: boolean | undefined;
  /** the cwd of a process whose ProcLite has none; asked only for processes `include` keeps */
  readonly cwdOf?: ((pid: number) => string | undefined) | undefined;
  /** see Place.realpath */
  readonly realpath?: ((abs: string) => string | undefined) | undefined;
}

/**
 * The group an identity belongs to: its folder and key (`/srv/w: worker.py --queue a`), or the
 * key alone across folders and for programs found on PATH. Undefined when the folder cannot
 * be known: such a process is compared with nothing.
 */
export function identityOf(id: WorkerId, acrossFolders = false): string | undefined {
  if (acrossFolders || id.folder === '') return id.key;
  return id.folder === undefined ? undefined : `${id.folder}: ${id.key}`;
}

/**
 * Group processes into instances by identity (folder and key), ignoring versions: a process
 * whose parent has the same identity belongs to the parent's instance (a wrapper and its child
 * are one). worker.py and worker_v2.py in one folder compete; the same name in two folders
 * does not, unless `acrossFolders`. `include` sees the identity before its folder is resolved.
 */
export function groupInstances(procs: readonly ProcLite[], include: (p: ProcLite, id: WorkerId) => boolean, opts: GroupOptions = {}): Map<string, Instance[]> {
  const across = opts.acrossFolders ?? false;
  const ids = new Map<number, WorkerId>();
  const keys = new Map<number, string>();
  for (const p of procs) {
    const bare = workerId(p.argv);
    if (!bare || !include(p, bare)) continue;
    // the folder costs a readlink and a realpath: only for processes in scope, and not across folders
    const id = across ? bare : workerId(p.argv, { cwd: p.cwd ?? opts.cwdOf?.(p.pid), realpath: opts.realpath })!;
    ids.set(p.pid, id);
    keys.set(p.pid, identityOf(id, across) ?? `${id.key} (folder unknown, PID ${p.pid})`);
  }
  const byPid = new Map(procs.map((p) => [p.pid, p]));
  const rootOf = (pid: number): number => {
    let cur = pid;
    for (let i = 0; i < 16; i++) {
      const parent = byPid.get(cur)?.ppid;
      if (parent === undefined || !keys.has(parent) || keys.get(parent) !== keys.get(pid)) return cur;
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
    const groupKey = keys.get(root)!;
    const inst: Instance = { pid: root, id: ids.get(root)!, start: byPid.get(root)!.start, pids: pids.sort((a, b) => a - b) };
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
