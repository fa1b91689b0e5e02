/**
 * The argv a batch job's line runs as. A line of plain words (letters, digits and `_./-`
 * separated by spaces) whose first word is a program on PATH means the same to /bin/sh as
 * that program with those words: no quoting, expansion, redirection, assignment or comment
 * can be in it. Such a line is started directly, which spares the shell's start (about 1-2 ms
 * of CPU here, on every job's path to its first instruction); anything else, a shell word
 * (builtins and reserved words: `cd`, `exit`, `.`, `pwd`...) or a program PATH does not have,
 * runs as `/bin/sh -c LINE`, so the shell says "not found" exactly as it would.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { join } from 'node:path';

const PLAIN = /^[A-Za-z0-9_./-]+(?: +[A-Za-z0-9_./-]+)*$/;

/** dash's and POSIX's builtins and reserved words: a line starting with one needs the shell. */
const SHELL_WORDS = new Set(
  (
    '. : [ alias bg break cd command continue echo eval exec exit export false fg getopts hash jobs kill local printf pwd read ' +
    'readonly return set shift test times trap true type ulimit umask unalias unset wait case do done elif else esac fi for if in then until while'
  ).split(' '),
);

/** Where PATH finds `word` as an executable file, or undefined. */
function onPath(word: string, path: string | undefined): string | undefined {
  if (word.includes('/')) return undefined; // a path: the shell's own rules (and its message) apply
  // no PATH: the shell's default list is not Node's; an empty or relative entry is searched
  // in the job's folder: leave those lines to the shell
  if (path === undefined) return undefined;
  const dirs = path.split(':');
  if (dirs.some((d) => !d.startsWith('/'))) return undefined;
  for (const dir of dirs) {
    const file = join(dir, word);
    try {
      if (!statSync(file).isFile()) continue;
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** `line` as the argv to start: its words when that is what /bin/sh would run, else `/bin/sh -c LINE`. */
export function jobArgv(line: string, path: string | undefined): string[] {
  const trimmed = line.trim();
  if (PLAIN.test(trimmed)) {
    const words = trimmed.split(/ +/);
    if (!SHELL_WORDS.has(words[0]!) && onPath(words[0]!, path) !== undefined) return words;
  }
  return ['/bin/sh', '-c', line];
}
