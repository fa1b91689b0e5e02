/**
 * `--joblog FILE` in GNU parallel's format, so tools that read parallel's joblog read ours:
 * a header, then one tab-separated line per job as it ends. Host is `:` (this host), Starttime
 * epoch seconds with 3 decimals, JobRuntime seconds `%10.3f`, Send and Receive 0, Exitval and
 * Signal numbers, Command with its newlines written as NUL (as parallel does). Jobs that never
 * started (refused, or left when the batch halted or stopped) get no line, as in parallel.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { UsageError } from '../../errors.js';

export const JOBLOG_HEADER = ['Seq', 'Host', 'Starttime', 'JobRuntime', 'Send', 'Receive', 'Exitval', 'Signal', 'Command'].join('\t');

export interface JoblogEntry {
  readonly seq: number;
  readonly startedAt: number;
  readonly runtimeMs: number;
  readonly exitCode: number | null;
  /** the signal number that ended the job, 0 when none */
  readonly signal: number;
  readonly command: string;
}

export function joblogLine(e: JoblogEntry): string {
  const runtime = (e.runtimeMs / 1000).toFixed(3).padStart(10);
  return [e.seq, ':', (e.startedAt / 1000).toFixed(3), runtime, 0, 0, e.exitCode ?? 0, e.signal, e.command.replace(/\n/g, '\0')].join('\t');
}

/** An open joblog: created or truncated like the shell's `>` would (a user path, as parallel's). */
export class Joblog {
  private fd: number | undefined;

  constructor(path: string) {
    if (path === '') throw new UsageError('--joblog: empty path; expected a file to write the job log to');
    try {
      this.fd = openSync(path, 'w', 0o644);
    } catch (err) {
      throw new UsageError(`--joblog: cannot write ${path} (${(err as NodeJS.ErrnoException).code ?? 'unwritable'}); expected a file path`);
    }
    this.write(JOBLOG_HEADER);
  }

  add(e: JoblogEntry): void {
    this.write(joblogLine(e));
  }

  private write(line: string): void {
    if (this.fd === undefined) return;
    try {
      writeSync(this.fd, `${line}\n`);
    } catch {
      /* a full disk loses the log, never the batch */
    }
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
