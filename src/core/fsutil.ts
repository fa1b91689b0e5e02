import { closeSync, constants, existsSync, fchmodSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, type Stats, statSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { UsageError } from './errors.js';

/**
 * Remove a file (or a link, never what it points to) if it is there, as `rm -f` does. Plain
 * unlink: `rmSync(path, { force: true })` loads Node's rimraf on first use and stats first, a
 * cost paid on every run's end.
 */
export function removeFile(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/**
 * Write a file atomically: write a temp file beside it, fsync, rename over the target.
 * Readers see the old content or the new, never half a file. `sync: false` skips the fsync,
 * for files that mean nothing after the machine restarts (a PID file names a process of this
 * boot): a crash may then leave them empty, which their readers already treat as unreadable.
 */
export function writeFileAtomic(path: string, content: string | NodeJS.ArrayBufferView, mode = 0o644, o: { sync?: boolean } = {}): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  const fd = openSync(tmp, 'wx', mode);
  try {
    if (typeof content === 'string') writeSync(fd, content);
    else writeSync(fd, content);
    if (o.sync !== false) fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      /* already gone */
    }
    throw err;
  }
  closeSync(fd);
  try {
    renameSync(tmp, path);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      /* already gone */
    }
    throw err;
  }
}

/**
 * Check up front that `path` can be written as an output file: its folder exists and it is
 * not itself a folder. Throws a UsageError naming the flag, so bad input changes nothing.
 */
export function checkOutputPath(path: string, flag: string): void {
  if (path === '' || path.includes('\0')) throw new UsageError(`${flag}: invalid path ${JSON.stringify(path)}; expected a file path`);
  let dirStat;
  try {
    dirStat = statSync(dirname(path));
  } catch {
    throw new UsageError(`${flag}: folder ${dirname(path)} does not exist; expected a file path in an existing folder`);
  }
  if (!dirStat.isDirectory()) throw new UsageError(`${flag}: ${dirname(path)} is not a folder; expected a file path in an existing folder`);
  try {
    if (statSync(path).isDirectory()) throw new UsageError(`${flag}: ${path} is a folder; expected a file path`);
  } catch (err) {
    if (err instanceof UsageError) throw err;
  }
}

/**
 * Create a private folder (0700) and its parents. One component at a time rather than
 * mkdirSync's recursive mode, which loops forever where mkdir says ENOENT under a parent that
 * exists (procfs: --state-dir /proc/x).
 */
export function ensurePrivateDir(dir: string): void {
  const abs = resolve(dir);
  const missing: string[] = [];
  for (let d = abs; !existsSync(d); d = dirname(d)) {
    missing.unshift(d);
    if (dirname(d) === d) break;
  }
  for (const d of missing) {
    try {
      mkdirSync(d, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}

/**
 * Create `path` as an empty private file (0600), never through a symlink: O_EXCL fails on any
 * existing name, a dangling link included. Returns false when something already has the name.
 */
export function createPrivateFile(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW | constants.O_WRONLY, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    fchmodSync(fd, 0o600); // exactly 0600 whatever the umask
  } finally {
    closeSync(fd);
  }
  return true;
}

/** A user's name from /etc/passwd, or undefined (no entry, or no such file). */
export function userName(uid: number): string | undefined {
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':');
      if (f.length >= 3 && f[2] === String(uid)) return f[0];
    }
  } catch {
    /* no passwd file: the uid alone */
  }
  return undefined;
}

/** "alice (uid 1000)", or "uid 1000" when the name is unknown. */
export function describeUser(uid: number): string {
  const name = userName(uid);
  return name === undefined ? `uid ${uid}` : `${name} (uid ${uid})`;
}

/** A mode's permission bits in octal as ls and chmod write them: 0700, 1777. */
export const octalMode = (mode: number) => (mode & 0o7777).toString(8).padStart(4, '0');

/** Why a file or folder is not to be trusted by `euid`; the caller words the refusal and the fix. */
export interface Untrusted {
  /** owned by someone other than the invoking user and root */
  readonly badOwner: boolean;
  /** writable by group or others (a sticky folder's write bits excepted when `stickyOk`) */
  readonly badMode: boolean;
  /** "owned by alice (uid 1000), mode 0775" */
  readonly what: string;
  /** "not yours or root's, and writable by group or others" */
  readonly why: string;
}

/**
 * Is `st` something the invoking user may trust: owned by them (effective uid) or by root, and
 * writable by nobody else? As ssh treats ~/.ssh and git a repository's owner. `stickyOk`: a
 * sticky world-writable folder (/tmp) lets others add names but not replace ours. Undefined
 * when it is trusted, or where there are no uids (not POSIX).
 */
export function untrusted(st: Stats, euid: number | undefined = process.geteuid?.(), stickyOk = false): Untrusted | undefined {
  if (euid === undefined) return undefined;
  const badOwner = st.uid !== euid && st.uid !== 0;
  const badMode = (st.mode & 0o022) !== 0 && !(stickyOk && st.isDirectory() && (st.mode & 0o1000) !== 0);
  if (!badOwner && !badMode) return undefined;
  const why = [badOwner ? "not yours or root's" : '', badMode ? 'writable by group or others' : ''].filter(Boolean).join(', and ');
  return { badOwner, badMode, what: `owned by ${describeUser(st.uid)}, mode ${octalMode(st.mode)}`, why };
}

/** The shell command that makes `path` trusted: chown to the invoking user and/or chmod to `mode`. */
export function trustFix(path: string, u: Untrusted, mode: string, euid: number | undefined = process.geteuid?.()): string {
  const q = /^[\w@%+=:,./-]+$/.test(path) ? path : `'${path.replace(/'/g, `'\\''`)}'`;
  const steps: string[] = [];
  if (u.badOwner) steps.push(`chown ${euid === undefined ? '$USER' : (userName(euid) ?? String(euid))} ${q}`);
  if (u.badMode || u.badOwner) steps.push(`chmod ${mode} ${q}`);
  return steps.join(' && ');
}
