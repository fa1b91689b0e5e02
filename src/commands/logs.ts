/**
 * agentctl logs NAME|RUN_ID [-n N] [-f]: a detached run's log, the latest run of a name by
 * default, as `tail` / `journalctl -u` show one: its last lines (reaching into `<log>.prev`
 * when the log was capped), and with -f its new lines as they are written, until the run ends,
 * exiting with the run's code as `wait` does. `--json`: one JSON object per line (JSON lines).
 * Signals nothing.
 */
import type { Ctx, Outcome, Ui } from '../core/ctx.js';
import type { CommandDecl, OptionValues } from '../core/declaration.js';
import { EXIT, ExitError, UsageError } from '../core/errors.js';
import { logFile } from '../core/runs/files.js';
import { followLog, lastOf, LogFollower, nextRun, readTail } from '../core/runs/logs.js';
import { getRun, type RunRow } from '../core/runs/registry.js';
import { resolveTargets, runStatus } from '../core/runs/wait.js';
import { printable } from '../core/text.js';
import { parseIntInRange } from '../core/units.js';

export const declaration: CommandDecl = {
  name: 'logs',
  description: "print a detached run's log (a name's latest run, or a run id); -f follows it until the run ends and exits with its code",
  args: [{ name: '<run>', help: 'a run name (its latest run) or a run id' }],
  options: [
    { flags: '-n, --lines <n>', help: 'print the last n lines (0: none), from <log>.prev too when the log was capped', default: '10' },
    { flags: '-f, --follow', help: "print new lines as they are written until the run ends; exit with the run's code" },
    { flags: '--next', help: "with -f: when the run ends, go on with the name's next detached run, and so on, until interrupted" },
  ],
  examples: ['agentctl logs build', 'agentctl logs build -n 100', 'agentctl logs -f r0mwrf0p246fy01', 'agentctl logs build -n 0 -f --json'],
  exitCodes:
    "0 printed; with -f the run's own code when it ends (128+n for signal n), 130 on Ctrl-C; 1 a foreground run (no log), a log that is gone or not a plain file of yours; 2 bad input or an unknown run",
};

/** One line of the log, as `--json` prints it: one object per line (JSON lines). */
export interface LogLine {
  readonly run_id: string;
  readonly name: string;
  /** the line as written, without its newline (invalid UTF-8 as U+FFFD) */
  readonly line: string;
}

export async function run(opts: OptionValues, args: readonly string[], ctx: Ctx): Promise<Outcome<LogLine>> {
  const n = parseIntInRange(String(opts.lines), '--lines', 0, 1_000_000);
  const follow = Boolean(opts.follow);
  const next = Boolean(opts.next);
  if (next && !follow) throw new UsageError('--next: only with -f (--follow)');
  if (args.length !== 1) throw new UsageError('logs: give one run name or run id');
  const state = ctx.state();
  const { targets, unknown } = resolveTargets(state, args, 'logs NAME|RUN_ID');
  if (unknown.length || !targets[0]) {
    throw new UsageError(`logs: no run named ${JSON.stringify(unknown[0] ?? args[0])} (neither a run id nor a name with a run)`, { unknown });
  }
  let row = getRun(state, targets[0].runId)!;
  let who = `${row.name} (${row.id})`;
  if (row.mode !== 'detached') {
    throw new ExitError(EXIT.failed, `logs: ${who} ran in the foreground: its output went to the terminal that started it, there is no log`, 'no_log', { run_id: row.id });
  }
  let path = logFile(state, row);
  const unreadable = (why: 'missing' | 'refused') =>
    new ExitError(
      EXIT.failed,
      why === 'missing' ? `logs: ${who} has no log at ${path} (removed?)` : `logs: ${path} is a link or not a plain file of yours; refusing to read it`,
      why === 'missing' ? 'no_log' : 'log_refused',
      { run_id: row.id, path },
    );
  const read = readTail(path, n);
  if (!read.ok) throw unreadable(read.why);

  const print = (lines: readonly string[]) => {
    if (lines.length === 0) return;
    const text = ctx.globals.json ? lines.map((line) => JSON.stringify({ run_id: row.id, name: row.name, line } satisfies LogLine)).join('\n') : lines.map((line) => printable(line)).join('\n');
    ctx.stdout.write(`${text}\n`);
  };

  /** --next: the name's next detached run, once it has started; its log printed from the start */
  let told = '';
  const goOn = (ended: RunRow) => {
    if (told !== ended.id) {
      told = ended.id;
      ctx.note(`logs: ${who} ${ended.state}, status ${runStatus(ended)}; waiting for the next run of ${row.name}`);
    }
    const nx = nextRun(state, row.name, ended);
    if (!nx) return undefined;
    const nxPath = logFile(state, nx);
    const t = readTail(nxPath, Number.MAX_SAFE_INTEGER);
    if (!t.ok) return undefined; // its log is not there yet, or refused: look again
    row = nx;
    path = nxPath;
    who = `${row.name} (${row.id})`;
    ctx.note(`logs: following ${who}`);
    print(lastOf(t.tail, Number.MAX_SAFE_INTEGER, false));
    return { runId: nx.id, follower: new LogFollower(nxPath, t.tail) };
  };

  if (!follow) {
    print(lastOf(read.tail, n, true));
    return {};
  }
  print(lastOf(read.tail, n, false));
  const follower = new LogFollower(path, read.tail);
  const end = await followLog(
    { state, config: ctx.config(), now: ctx.now },
    { runId: row.id, follower },
    {
      lines: print,
      gap: () => ctx.note(`logs: ${who}: the log was capped faster than it was read; some lines may be missing here`),
      ...(next ? { next: (ended: RunRow) => goOn(ended) } : {}),
    },
  );
  if (end.how === 'signal') return { exitCode: end.signal === 'SIGINT' ? 130 : 143 };
  if (end.how === 'lost') throw unreadable(end.why);
  const status = end.status;
  return { exitCode: status, ...(status !== 0 ? { message: `logs: ${who} ${end.run.state}${end.run.signal ? ` by ${end.run.signal}` : ''}, status ${status}` } : {}) };
}

/** A line of another process's output, safe for a terminal (control characters escaped). */
export function render(l: LogLine, _ui: Ui): string {
  return printable(l.line);
}
