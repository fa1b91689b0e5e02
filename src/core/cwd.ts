/**
 * Where processes run from (Linux /proc/PID/cwd) and where paths really lead (realpath),
 * without throwing: what dedupe-workers needs for a worker's folder, and what env-gc needs to
 * see that a worktree is in use. Only processes we may read are seen (our own; any as root).
 */
import { readlinkSync, realpathSync } from 'node:fs';
import { sep } from 'node:path';
import { procPids } from './proc.js';

/** The kernel marks a working folder that was removed after the process entered it. */
const DELETED = ' (deleted)';

/**
 * A process's working folder, or undefined when it is gone or not ours to read. A folder
 * removed under the process comes back as the path it had (without the kernel's
 * " (deleted)"), so it still tells two folders apart.
 */
export function procCwd(pid: number, procRoot = '/proc'): string | undefined {
  try {
    const p = readlinkSync(`${procRoot}/${pid}/cwd`);
    return p.endsWith(DELETED) ? p.slice(0, -DELETED.length) : p;
  } catch {
    return undefined;
  }
}

/** realpath, or undefined when the path cannot be resolved (missing, a folder we may not search). */
export function realPath(path: string): string | undefined {
  try {
    return realpathSync.native(path);
  } catch {
    return undefined;
  }
}

/** realPath with a memory: one scan resolves many scripts in the same few folders. */
export function cachedRealPath(): (path: string) => string | undefined {
  const seen = new Map<string, string | undefined>();
  return (path) => {
    if (!seen.has(path)) seen.set(path, realPath(path));
    return seen.get(path);
  };
}

/** Is `path` the folder `dir` or inside it? Both absolute and normalised. */
export function isInside(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith(sep) ? dir : dir + sep);
}

/** Processes (that we can read) whose working folder is `dir` or inside it; `dir` as given and as resolved both count. */
export function processesInside(dir: string, opts: { procRoot?: string; exclude?: ReadonlySet<number> } = {}): Array<{ pid: number; cwd: string }> {
  const dirs = [...new Set([dir, realPath(dir) ?? dir])];
  const out: Array<{ pid: number; cwd: string }> = [];
  for (const name of procPids(opts.procRoot)) {
    const pid = Number(name);
    if (opts.exclude?.has(pid)) continue;
    const cwd = procCwd(pid, opts.procRoot);
    if (cwd !== undefined && dirs.some((d) => isInside(cwd, d))) out.push({ pid, cwd });
  }
  return out;
}
