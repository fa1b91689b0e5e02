import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { UsageError } from './errors.js';

/**
 * Write a file atomically: write a temp file beside it, fsync, rename over the target.
 * Readers see the old content or the new, never half a file.
 */
export function writeFileAtomic(path: string, content: string | NodeJS.ArrayBufferView, mode = 0o644): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  const fd = openSync(tmp, 'wx', mode);
  try {
    if (typeof content === 'string') writeSync(fd, content);
    else writeSync(fd, content);
    fsyncSync(fd);
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
