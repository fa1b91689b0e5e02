/**
 * The argv a batch job's line runs as. A line of plain words (letters, digits and `_./-`
 * separated by spaces) whose first word is a program on PATH means the same to /bin/sh as
 * that program with those words: no quoting, expansion, redirection, assignment or comment
 * can be in it. Such a line is started directly, which spares the shell's start (about 1-2 ms
 * of CPU here, on every job's path to its first instruction); anything else, a shell word
 * (builtins and reserved words: `cd`, `exit`, `.`, `pwd`...) or a program PATH does not have,
 * runs as `/bin/sh -c LINE`, so the shell says "not found" exactly as it would.
 * What still differs from the shell: it would reset IFS, OPTIND and PPID and drop variables
 * whose names are not shell names before the exec; the job's PWD is set as it would set it
 * (job.ts).
 */
import { accessSync, constants, statSync } from 'node:fs';
import { join } from 'node:path';
import { elfForThisMachine, fileHead } from '../../native.js';

const PLAIN = /^[A-Za-z0-9_./-]+(?: +[A-Za-z0-9_./-]+)*$/;

/**
 * Builtins and reserved words of dash, POSIX and bash (where /bin/sh is bash): a line starting
 * with one needs the shell. A superset costs nothing: those lines just keep the shell.
 */
const SHELL_WORDS = new Set(
  (
    '. : [ [[ ]] alias bg bind break builtin caller cd chdir command compgen complete continue declare dirs disown echo enable eval exec exit export ' +
    'false fc fg getopts hash help history jobs kill let local logout mapfile popd printf pushd pwd read readarray readonly return select set shift ' +
    'shopt source suspend test time times trap true type typeset ulimit umask unalias unset wait case do done elif else esac fi for function if in ' +
    'then until while coproc'
  ).split(' '),
);

/** A program the kernel runs as itself: a `#!` script, or an ELF program for this machine (a foreign one would be handed to /bin/sh by execvp, and run as a script). */
function runsAsItself(file: string): boolean {
  try {
    const head = fileHead(file, 20);
    return head.subarray(0, 2).toString('latin1') === '#!' || elfForThisMachine(head);
  } catch {
    return false;
  }
}

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
      // the first executable match is what the shell runs too: only one that runs as itself
      // is started directly
      return runsAsItself(file) ? file : undefined;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** `line` as the argv to start: its words when that is what /bin/sh would run, else `/bin/sh -c LINE`. */
export function jobArgv(line: string, path: string | undefined): string[] {
  // blanks as the shell splits on them (String.trim would also take a BOM, NBSP, \f, \v)
  const trimmed = line.replace(/^[ \t]+|[ \t]+$/g, '');
  if (PLAIN.test(trimmed)) {
    const words = trimmed.split(/ +/);
    if (!SHELL_WORDS.has(words[0]!) && onPath(words[0]!, path) !== undefined) return words;
  }
  return ['/bin/sh', '-c', line];
}
