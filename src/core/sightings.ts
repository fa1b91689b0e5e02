/**
 * Process sightings: the agent and service processes each throttle reading saw, so a later
 * doctor can find restart loops of processes agentctl did not start (agents.restart_loops).
 * agentctl's own runs are in the `runs` table; nothing else records a process that someone
 * else keeps restarting, and there is no daemon to watch the process table.
 *
 * Every reading (throttle-status, --watch, --wait-level polls, spawn, doctor, reap, the
 * library) already lists the process table. From that list, with no second walk of /proc:
 * the processes whose command line matches `agents.patterns` or a `[[services]]` `match`
 * (usually a handful) get their start time from /proc/PID/stat, and one batched upsert records
 * them (`last_seen` moves on while a process stays). The same write closes the sightings the
 * list no longer shows (`gone_at`). A reading that finds nothing to record and nothing gone
 * writes nothing.
 *
 * The limit: a process that lives and dies between two readings is never seen. A reading
 * every I seconds sees a process that lives L seconds with probability about min(1, L / I).
 *
 * Planning is pure (`matchProcesses`, `planSightings`, `goneAmong`, `restartLoops`); the
 * I/O is `recordSightings` and `readSightings`.
 */
import { fnv1a64 } from './config/load.js';
import type { Config } from './config/types.js';
import { bootId, parseProcStat } from './identity.js';
import { type ProcDetail, type ProcInfo, readProcFile, supervisorRunId } from './proc.js';
import type { State } from './state.js';
import { redactArgv } from './text.js';

/** USER_HZ is 100 on every Linux agentctl supports: a start time in ticks is in 10 ms steps. */
const TICK_MS = 10;

/** Stored command lines are cut to this many characters: a prompt passed as an argument can be long. */
const COMMAND_MAX_CHARS = 2_000;

/** A reading records at most this many processes: one small write, whatever the host runs. */
export const MAX_PER_READING = 200;

/** A command-line rule: which processes are recorded, and what they matched (`agents`, `services.NAME`). */
export interface SightingRule {
  readonly matched: string;
  readonly re: RegExp;
}

const rulesCache = new WeakMap<object, SightingRule[]>();

/** The rules a config implies: every agent pattern, and each service's `match`. Compiled once per config. */
export function sightingRules(config: Pick<Config, 'agents' | 'services'>): SightingRule[] {
  const cached = rulesCache.get(config);
  if (cached) return cached;
  const rules = [
    ...config.agents.patterns.map((p) => ({ matched: 'agents', re: new RegExp(p) })),
    ...config.services.filter((s) => s.match).map((s) => ({ matched: `services.${s.name}`, re: new RegExp(s.match!) })),
  ];
  rulesCache.set(config, rules);
  return rules;
}

/** The processes a rule matches (the first rule that does names it), never `selfPid` or a detached run's supervisor. */
export function matchProcesses(procs: readonly ProcInfo[], rules: readonly SightingRule[], selfPid = process.pid): Array<{ proc: ProcInfo; matched: string }> {
  const out: Array<{ proc: ProcInfo; matched: string }> = [];
  if (!rules.length) return out;
  for (const p of procs) {
    if (p.argv.length === 0 || p.pid === selfPid) continue;
    const rule = rules.find((r) => r.re.test(p.cmdline));
    if (rule && supervisorRunId(p.argv) === undefined) out.push({ proc: p, matched: rule.matched });
  }
  return out;
}

/** One process as a reading saw it. */
export interface Seen {
  /** fnv1a64 of the redacted argv: the same command line is the same identity, whatever its PID */
  readonly ident: string;
  readonly pid: number;
  readonly ppid: number | null;
  /** clock ticks since boot (/proc/PID/stat field 22), as in every stored identity */
  readonly startTime: string;
  /** when it started, ms since the epoch */
  readonly startedAt: number;
  readonly matched: string;
  /** the redacted argv as JSON, cut at COMMAND_MAX_CHARS */
  readonly command: string;
}

/** The identity key of a command line: its redacted argv, hashed. Secrets never reach the hash. */
export function identKey(argv: readonly string[]): string {
  return fnv1a64(redactArgv(argv).join('\0'));
}

/** The redacted argv as stored: whole arguments while they fit, the last one cut with `…`. */
export function storedCommand(argv: readonly string[]): string {
  const out: string[] = [];
  let room = COMMAND_MAX_CHARS;
  for (const a of redactArgv(argv)) {
    if (a.length > room) {
      out.push(`${a.slice(0, Math.max(0, room))}…`);
      break;
    }
    out.push(a);
    room -= a.length + 1;
  }
  return JSON.stringify(out);
}

/**
 * What a reading records: each matched process with its start time. `statOf` reads a
 * process's start ticks and parent (undefined when it is gone meanwhile); a ProcDetail
 * already carries them. `bootMs` is when the host booted (now minus uptime).
 */
export function planSightings(matches: ReadonlyArray<{ proc: ProcInfo; matched: string }>, statOf: (pid: number) => { startTicks: string; ppid: number } | undefined, bootMs: number): Seen[] {
  const out: Seen[] = [];
  for (const { proc, matched } of matches.slice(0, MAX_PER_READING)) {
    const d = proc as Partial<ProcDetail>;
    const st = d.startTicks !== undefined && d.ppid !== undefined ? { startTicks: String(d.startTicks), ppid: d.ppid } : statOf(proc.pid);
    if (!st || !/^\d+$/.test(st.startTicks)) continue;
    out.push({
      ident: identKey(proc.argv),
      pid: proc.pid,
      ppid: Number.isInteger(st.ppid) ? st.ppid : null,
      startTime: st.startTicks,
      startedAt: Math.round(bootMs + Number(st.startTicks) * TICK_MS),
      matched,
      command: storedCommand(proc.argv),
    });
  }
  return out;
}

/** A sighting not yet found gone. */
export interface Tracked {
  readonly pid: number;
  readonly start_time: string;
  readonly boot_id: string;
}

/**
 * The tracked sightings the current process list shows gone: from another boot; PID absent;
 * a zombie; a different start time (the PID was reused); or a known command line that this
 * reading did not record (it ended, or became something else). A PID still listed without
 * its command line (a list read without argv) is left alone: nothing says it ended. With
 * `complete` false (the reading hit MAX_PER_READING), only the first three reasons count.
 */
export function goneAmong(tracked: readonly Tracked[], procs: readonly ProcInfo[], seen: readonly Seen[], boot: string, complete = true): Tracked[] {
  const alive = new Set(seen.map((s) => `${s.pid}:${s.startTime}`));
  const byPid = new Map(procs.map((p) => [p.pid, p]));
  return tracked.filter((t) => {
    if (t.boot_id !== boot) return true;
    if (alive.has(`${t.pid}:${t.start_time}`)) return false;
    const p: (Partial<ProcDetail> & ProcInfo) | undefined = byPid.get(t.pid);
    if (!p || p.state === 'Z') return true;
    if (p.startTicks !== undefined && String(p.startTicks) !== t.start_time) return true;
    return complete && p.argv.length > 0;
  });
}

/** Seconds since boot, from /proc/uptime; undefined off Linux. */
function uptimeMs(): number | undefined {
  const s = Number(readProcFile('/proc/uptime')?.split(' ')[0]);
  return Number.isFinite(s) ? s * 1000 : undefined;
}

function statOf(pid: number): { startTicks: string; ppid: number } | undefined {
  const text = readProcFile(`/proc/${pid}/stat`);
  const st = text === undefined ? undefined : parseProcStat(text);
  return st && st.state !== 'Z' ? { startTicks: st.startTicks, ppid: st.ppid } : undefined;
}

/**
 * Record what one reading saw (Linux): the matched processes in one upsert, and the sightings
 * no longer there closed, in one short write; no write when there is neither.
 */
export function recordSightings(state: State, procs: readonly ProcInfo[], config: Pick<Config, 'agents' | 'services'>, now: number): void {
  if (process.platform !== 'linux') return;
  const matches = matchProcesses(procs, sightingRules(config));
  // a row another reading refreshed at or after this one's time is not this (older) list's to judge
  const tracked = state.guard(() => state.db.prepare('SELECT pid, start_time, boot_id FROM sightings WHERE gone_at IS NULL AND last_seen < ?').all(now) as Tracked[]);
  if (!matches.length && !tracked.length) return;
  const up = uptimeMs();
  if (up === undefined) return;
  const boot = bootId();
  const seen = planSightings(matches, statOf, now - up);
  const gone = goneAmong(tracked, procs, seen, boot, matches.length <= MAX_PER_READING);
  if (!seen.length && !gone.length) return;
  state.write(() => {
    if (seen.length) {
      const values = seen.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ');
      state.db
        .prepare(
          `INSERT INTO sightings (ident, pid, ppid, start_time, boot_id, started_at, matched, command, first_seen, last_seen) VALUES ${values}
           ON CONFLICT(pid, start_time, boot_id) DO UPDATE SET last_seen = MAX(last_seen, excluded.last_seen), gone_at = NULL`,
        )
        .run(...seen.flatMap((s) => [s.ident, s.pid, s.ppid, s.startTime, boot, s.startedAt, s.matched, s.command, now, now]));
    }
    if (gone.length) {
      const close = state.db.prepare('UPDATE sightings SET gone_at = ? WHERE pid = ? AND start_time = ? AND boot_id = ? AND gone_at IS NULL AND last_seen < ?');
      for (const g of gone) close.run(now, g.pid, g.start_time, g.boot_id, now);
    }
  });
}

/** A stored sighting, as doctor reads it back. */
export interface SightingRow {
  readonly ident: string;
  readonly pid: number;
  readonly ppid: number | null;
  readonly start_time: string;
  readonly started_at: number;
  readonly matched: string;
  readonly command: string;
  readonly first_seen: number;
  readonly last_seen: number;
  readonly gone_at: number | null;
}

/** Sightings of this boot last seen at or after `sinceMs`. */
export function readSightings(state: State, sinceMs: number, boot = bootId()): SightingRow[] {
  return state.guard(
    () =>
      state.db
        .prepare('SELECT ident, pid, ppid, start_time, started_at, matched, command, first_seen, last_seen, gone_at FROM sightings WHERE last_seen >= ? AND boot_id = ? ORDER BY started_at')
        .all(sinceMs, boot) as SightingRow[],
  );
}

/** One command line that kept coming back with new PIDs and dying young. */
export interface RestartLoop {
  readonly ident: string;
  readonly matched: string;
  /** the newest instance's command line (redacted when stored) */
  readonly argv: readonly string[];
  /** distinct short-lived processes of this identity that started in the window and are gone */
  readonly count: number;
  /** the first and last of their start times, ms */
  readonly firstStart: number;
  readonly lastStart: number;
  /** the longest any of them was seen alive, ms */
  readonly longestSeenMs: number;
  /** their PIDs, oldest first, at most the newest 5 */
  readonly pids: readonly number[];
  /** the newest one's parent PID and start time, to name what restarts it */
  readonly parent: { readonly pid: number; readonly childStartTime: string } | null;
  /** instances alive at the last reading */
  readonly alive: number;
}

/** A stored command as an argv; anything else read back is shown as one word (the state is data, not trusted). */
export function parseCommand(text: string): string[] {
  try {
    const v = JSON.parse(text) as unknown;
    if (Array.isArray(v) && v.every((a) => typeof a === 'string')) return v;
  } catch {
    /* shown as it is */
  }
  return [text];
}

/**
 * Restart loops among sightings: identities with at least `minCount` distinct processes that
 * started within `windowMs` before `now`, were found gone, and lived less than `lifetimeMs` as
 * far as readings can tell (the last reading that saw each one saw it younger than that).
 */
export function restartLoops(rows: readonly SightingRow[], opts: { now: number; windowMs: number; lifetimeMs: number; minCount: number }): RestartLoop[] {
  const since = opts.now - opts.windowMs;
  const groups = new Map<string, SightingRow[]>();
  for (const r of rows) (groups.get(r.ident) ?? groups.set(r.ident, []).get(r.ident)!).push(r);
  const out: RestartLoop[] = [];
  for (const [ident, all] of groups) {
    const short = all.filter((r) => r.gone_at !== null && r.started_at >= since && r.last_seen - r.started_at < opts.lifetimeMs).sort((a, b) => a.started_at - b.started_at);
    if (short.length < opts.minCount) continue;
    const newest = short[short.length - 1]!;
    out.push({
      ident,
      matched: newest.matched,
      argv: parseCommand(newest.command),
      count: short.length,
      firstStart: short[0]!.started_at,
      lastStart: newest.started_at,
      longestSeenMs: Math.max(...short.map((r) => r.last_seen - r.started_at)),
      pids: short.slice(-5).map((r) => r.pid),
      parent: newest.ppid !== null && newest.ppid > 1 ? { pid: newest.ppid, childStartTime: newest.start_time } : null,
      alive: all.filter((r) => r.gone_at === null).length,
    });
  }
  return out.sort((a, b) => b.count - a.count);
}
