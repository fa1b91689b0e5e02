import { UsageError } from './errors.js';

/** Names of runs, groups and environments: they become file names, so no separators, no `..`, no control characters. */
export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function checkName(value: string, flag: string): string {
  if (!NAME_RE.test(value) || value.includes('..')) {
    throw new UsageError(
      `${flag}: invalid name ${JSON.stringify(value)}; expected 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit (no "/", "..", spaces or control characters)`,
    );
  }
  return value;
}
