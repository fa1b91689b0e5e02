/**
 * The command lines of a batch (`spawn --each`): one per line of FILE or stdin (`-`), or
 * NUL-separated with `-0` (then a command may hold newlines). Empty lines are skipped. Each is
 * run as `/bin/sh -c LINE`, so a line longer than the kernel takes for one argument is refused.
 */
import { readFileSync } from 'node:fs';
import { UsageError } from '../../errors.js';

/** The kernel's limit on one argument (MAX_ARG_STRLEN, 32 pages), the terminating NUL included. */
export const MAX_LINE_BYTES = 131_071;

/** More input than this is refused: a batch file is a list of commands, not data. */
export const MAX_INPUT_BYTES = 64 * 1024 * 1024;

/** One command line and its number among the lines read (1-based, empty lines counted). */
export interface JobLine {
  readonly line: number;
  readonly command: string;
}

/** Split what was read into command lines; UsageError (exit 2) for input that cannot run. */
export function parseLines(input: Buffer, nul: boolean, source: string): JobLine[] {
  const text = input.toString('utf8');
  const parts = text.split(nul ? '\0' : '\n');
  const out: JobLine[] = [];
  parts.forEach((raw, i) => {
    const command = nul ? raw : raw.replace(/\r$/, '');
    if (command.trim() === '') return;
    if (!nul && command.includes('\0')) throw new UsageError(`--each: line ${i + 1} of ${source} holds a NUL byte; a command cannot (NUL-separated input needs -0)`);
    if (Buffer.byteLength(command) > MAX_LINE_BYTES)
      throw new UsageError(`--each: ${nul ? 'command' : 'line'} ${i + 1} of ${source} is ${Buffer.byteLength(command)} bytes; at most ${MAX_LINE_BYTES} fit in one argument`);
    out.push({ line: i + 1, command });
  });
  if (!out.length) throw new UsageError(`--each: no command lines in ${source}${nul ? ' (NUL-separated, -0)' : ''}; expected one shell command per ${nul ? 'NUL-terminated record' : 'line'}`);
  return out;
}

/**
 * Read FILE, or stdin for `-`, whole (up to MAX_INPUT_BYTES). `process.stdin` is touched only
 * for `-`: Node builds the stream on first access (a few ms), a cost a FILE batch never needs.
 */
export async function readJobLines(file: string, nul: boolean, stdin?: NodeJS.ReadableStream): Promise<JobLine[]> {
  if (file === '') throw new UsageError('--each: empty path; expected a file of command lines, or - for stdin');
  const source = file === '-' ? 'stdin' : file;
  let input: Buffer;
  if (file === '-') {
    const chunks: Buffer[] = [];
    let size = 0;
    const from: NodeJS.ReadableStream = stdin ?? process.stdin;
    for await (const c of from) {
      const b = typeof c === 'string' ? Buffer.from(c) : c;
      size += b.length;
      if (size > MAX_INPUT_BYTES) throw new UsageError(`--each: stdin holds more than ${MAX_INPUT_BYTES / 1024 / 1024} MiB; expected a list of command lines`);
      chunks.push(b);
    }
    input = Buffer.concat(chunks);
  } else {
    try {
      input = readFileSync(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
      throw new UsageError(`--each: cannot read ${file} (${code}); expected a file of command lines, or - for stdin`);
    }
    if (input.length > MAX_INPUT_BYTES) throw new UsageError(`--each: ${file} is more than ${MAX_INPUT_BYTES / 1024 / 1024} MiB; expected a list of command lines`);
  }
  return parseLines(input, nul, source);
}
