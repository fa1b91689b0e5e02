/**
 * Files inside the state folder, opened without ever following a link. Whoever could write
 * there could plant `runs/<id>.exit` or a log as a symlink to a file of root's; agentctl then
 * must not read, truncate, append to or touch the target. Every open here carries O_NOFOLLOW,
 * reads also O_NONBLOCK (a planted FIFO must not hang a command), and a file that is not a
 * regular file of ours with one link is refused (a hard link to someone else's file is the
 * other way to plant one).
 */
import { closeSync, constants, fstatSync, ftruncateSync, lstatSync, openSync, readSync, type Stats } from 'node:fs';

const { O_RDONLY, O_WRONLY, O_CREAT, O_APPEND, O_NOFOLLOW, O_NONBLOCK } = constants;

/** Is this an ordinary file agentctl could have made: regular, one link, owned by us or by root? */
function ours(st: Stats): boolean {
  const me = process.geteuid?.();
  return st.isFile() && st.nlink === 1 && (me === undefined || st.uid === me || st.uid === 0);
}

/** Does anything (a link included) exist at `path`? existsSync follows links. */
export function lexists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** The size and mtime of a regular file of ours at `path`, without following a link; undefined otherwise. */
export function statOwn(path: string): Stats | undefined {
  try {
    const st = lstatSync(path);
    return ours(st) ? st : undefined;
  } catch {
    return undefined;
  }
}

/** Open `path` with O_NOFOLLOW; the fd is closed again unless it names a regular file of ours. */
function openOwn(path: string, flags: number, mode = 0o600): number | undefined {
  let fd: number;
  try {
    fd = openSync(path, flags | O_NOFOLLOW, mode);
  } catch {
    return undefined; // missing, a symlink (ELOOP), or not ours to open
  }
  try {
    if (ours(fstatSync(fd))) return fd;
  } catch {
    /* fall through */
  }
  closeSync(fd);
  return undefined;
}

/** Read a small file of ours (at most `max` bytes), or undefined when it is missing, a link, or not a plain file of ours. */
export function readOwn(path: string, max = 4096, position?: number): Buffer | undefined {
  const fd = openOwn(path, O_RDONLY | O_NONBLOCK);
  if (fd === undefined) return undefined;
  try {
    const buf = Buffer.alloc(max);
    const n = readSync(fd, buf, 0, max, position ?? null);
    return buf.subarray(0, n);
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** Open a log of ours for appending, creating it 0600; throws when a link or someone else's file is in the way. */
export function openLogForAppend(path: string): number {
  const fd = openOwn(path, O_WRONLY | O_CREAT | O_APPEND);
  if (fd === undefined) throw new Error(`${path} is a link or not a plain file of this user's; refusing to write through it`);
  return fd;
}

/** Truncate a file of ours to zero without following a link. */
export function truncateOwn(path: string): boolean {
  const fd = openOwn(path, O_WRONLY);
  if (fd === undefined) return false;
  try {
    ftruncateSync(fd, 0);
    return true;
  } catch {
    return false;
  } finally {
    closeSync(fd);
  }
}
