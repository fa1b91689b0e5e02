/**
 * The one place agentctl sends a signal (`signalProcess`) and the one escalation routine built
 * on it (`endTree`): snapshot the tree, TERM, wait the grace, KILL, sweep, verify.
 *
 * Every signal, TERM or KILL, to a process or to its group, is preceded by the identity check
 * (pid, start time, boot id) on the process it names. A group is only signalled through its
 * leader while the leader is still the very process we mean: a group id whose leader has gone
 * may since name an unrelated `setsid` process that reused the PID, so the members left behind
 * are signalled one by one, each by its own identity taken before the first signal.
 * PID 1, agentctl itself and its ancestors are never signalled.
 *
 * Without pidfds (Node has none) a check and the kill that follows are two system calls; the
 * window between them is microseconds, against a PID reuse that needs the whole PID space to
 * wrap meanwhile.
 */
import { bootId, getIdentity, isSameProcess, type ProcessIdentity, readProcStat } from './identity.js';
import { listDetailed, ownedByUs, type ProcDetail, procPids, readProcFile } from './proc.js';

/** How a process tree was ended: the one shape endTree returns and stop, reap, dedupe and the JSON report. */
export interface Ended {
  /** the registered run it was, when it was one */
  readonly run_id?: string;
  readonly name?: string;
  readonly pid: number;
  /** ended by TERM within the grace period */
  readonly graceful: boolean;
  /** had to be KILLed */
  readonly forced: boolean;
  /**
   * descendants that had left the run's process group (setsid, a cleared environment) and were
   * found by the parent chain or the run id, and signalled one by one
   */
  readonly swept: readonly number[];
  /** processes of the tree still alive afterwards: reported, never hidden */
  readonly survivors: readonly number[];
  readonly duration_ms: number;
  /** the signals went out but the state could not record it (a full disk, say) */
  readonly record_error?: string;
}

/** What endTree needs from the operating system; tests pass a fake. */
export interface ProcessOs {
  identity(pid: number): ProcessIdentity | undefined;
  /** the process table: pid, parent, group */
  table(): ReadonlyArray<Pick<ProcDetail, 'pid' | 'ppid' | 'pgid' | 'state' | 'startTicks'>>;
  /** live PIDs whose environment carries AGENTCTL_RUN_ID=runId */
  carriers(runId: string): number[];
  kill(pid: number, sig: NodeJS.Signals): void;
}

export const realOs: ProcessOs = {
  identity: getIdentity,
  table: () => listDetailed('/proc', { argv: false }),
  // another user can put our run id in an environment of theirs: only our own processes count
  carriers: (runId) => findByRunId(runId).filter((pid) => ownedByUs(pid)),
  kill: (pid, sig) => process.kill(pid, sig),
};

/** PIDs that must never be signalled: PID 1, ourselves and our ancestors. */
export function protectedPids(self = process.pid): Set<number> {
  const out = new Set<number>([0, 1, self]);
  let pid = self;
  for (let i = 0; i < 64; i++) {
    const st = readProcStat(pid);
    if (!st || st.ppid <= 1) break;
    out.add(st.ppid);
    pid = st.ppid;
  }
  return out;
}

/** Live processes whose environment carries AGENTCTL_RUN_ID=runId (Linux; readable ones only). */
export function findByRunId(runId: string): number[] {
  if (process.platform !== 'linux') return [];
  const needle = `\0AGENTCTL_RUN_ID=${runId}\0`;
  return procPids()
    .filter((n) => `\0${readProcFile(`/proc/${n}/environ`) ?? ''}`.includes(needle))
    .map(Number);
}

/**
 * Send `sig` to the process `id` names (or, with `group`, to the process group it leads),
 * only while the PID still names that very process and it is not protected. Returns whether
 * the signal was sent. This is the only function in agentctl that calls kill(2).
 */
export function signalProcess(id: ProcessIdentity, sig: NodeJS.Signals, opts: { group?: boolean; guard?: ReadonlySet<number>; os?: ProcessOs } = {}): boolean {
  const os = opts.os ?? realOs;
  const guard = opts.guard ?? protectedPids();
  if (guard.has(id.pid) || !isSameProcess(id, (pid) => os.identity(pid))) return false;
  try {
    os.kill(opts.group ? -id.pid : id.pid, sig);
    return true;
  } catch {
    return false; // gone meanwhile, or not ours to signal (EPERM): the verify step reports it
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The tree under `roots` in one reading of the process table: the roots' descendants by the
 * parent chain, the members of `pgid` (when given) and their descendants, and the processes
 * carrying the run id. Each with its identity as of this reading.
 */
function treeOf(os: ProcessOs, roots: readonly number[], pgid: number | undefined, runId: string | undefined): Array<ProcessIdentity & { pgid: number }> {
  const table = os.table();
  const boot = bootId();
  const kids = new Map<number, number[]>();
  const byPid = new Map<number, (typeof table)[number]>();
  for (const p of table) {
    byPid.set(p.pid, p);
    if (p.state === 'Z') continue;
    (kids.get(p.ppid) ?? kids.set(p.ppid, []).get(p.ppid)!).push(p.pid);
  }
  const found = new Set<number>();
  const stack = [...roots];
  if (pgid !== undefined) for (const p of table) if (p.pgid === pgid && p.state !== 'Z') stack.push(p.pid);
  if (runId) stack.push(...os.carriers(runId));
  while (stack.length) {
    const pid = stack.pop()!;
    if (found.has(pid)) continue;
    found.add(pid);
    stack.push(...(kids.get(pid) ?? []));
  }
  const out: Array<ProcessIdentity & { pgid: number }> = [];
  for (const pid of found) {
    const p = byPid.get(pid);
    if (p && p.state !== 'Z') out.push({ pid, startTime: String(p.startTicks), bootId: boot, pgid: p.pgid });
  }
  return out;
}

/**
 * End a process tree: the process `id` names, its process group when it leads one (every
 * agentctl run does), its descendants by the parent chain, and with `runId` every process that
 * carries the run id. The tree is read before the first signal and again before the KILL, so a
 * descendant that left the group (`setsid`, `env -i`) while its parent lived is ended too; what
 * still lives at the end is listed in `survivors`.
 */
export async function endTree(id: ProcessIdentity, opts: { runId?: string; graceMs: number; pollMs?: number; self?: number; os?: ProcessOs }): Promise<Ended> {
  const started = Date.now();
  const os = opts.os ?? realOs;
  const guard = protectedPids(opts.self);
  const poll = opts.pollMs ?? 50;
  const still = (e: ProcessIdentity) => isSameProcess(e, (pid) => os.identity(pid));
  const send = (e: ProcessIdentity, sig: NodeJS.Signals, group = false) => signalProcess(e, sig, { group, guard, os });
  if (guard.has(id.pid)) return { pid: id.pid, graceful: false, forced: false, swept: [], survivors: still(id) ? [id.pid] : [], duration_ms: 0 };

  // Our process and its group count only while the PID is still the process we mean. A group
  // that holds agentctl itself or an ancestor (a run that called `agentctl stop` on itself) is
  // never signalled as a group: its members are, one by one, past the guard.
  const ours = still(id);
  const table0 = os.table();
  const leads = ours && table0.some((p) => p.pid === id.pid && p.pgid === id.pid) && !table0.some((p) => p.pgid === id.pid && guard.has(p.pid));
  // the leader's PID and group are starting points only while the leader is still ours: once
  // it has exited, its PID may name an unrelated process and its children
  const snapshot = (roots: number[], leaderLives: boolean) =>
    treeOf(os, leaderLives ? [id.pid, ...roots] : roots, leads && leaderLives ? id.pid : undefined, opts.runId).filter((e) => e.pid !== id.pid && !guard.has(e.pid));
  const tree = new Map(snapshot([], ours).map((e) => [e.pid, e]));
  // members of the group the leader leads get the group's signal; the rest one by one
  const inGroup = (e: { pgid?: number }) => leads && e.pgid === id.pid;

  if (ours) send(id, 'SIGTERM', leads);
  for (const e of tree.values()) if (!inGroup(e)) send(e, 'SIGTERM');

  const alive = () => still(id) || [...tree.values()].some(still);
  const until = Date.now() + opts.graceMs;
  while (Date.now() < until && alive()) await sleep(poll);
  const graceful = !alive();

  let forced = false;
  if (!graceful) {
    forced = true;
    // what was forked during the grace, under processes of the tree that still live
    for (const e of snapshot(
      [...tree.values()].filter(still).map((e) => e.pid),
      still(id),
    ))
      if (!tree.has(e.pid)) tree.set(e.pid, e);
    // the group only through a leader that is still ours; its members by their own identity
    if (still(id)) send(id, 'SIGKILL', leads);
    for (const e of tree.values()) if (still(e)) send(e, 'SIGKILL');
  }
  // sweep: carriers of the run id that appeared meanwhile (their parents may be gone)
  if (opts.runId) {
    for (const pid of os.carriers(opts.runId)) {
      if (tree.has(pid) || pid === id.pid || guard.has(pid)) continue;
      const e = os.identity(pid);
      if (e) {
        tree.set(pid, { ...e, pgid: -1 });
        send(e, 'SIGKILL');
      }
    }
  }
  const verifyUntil = Date.now() + 2_000;
  while (Date.now() < verifyUntil && alive()) await sleep(poll);
  const escaped = [...tree.values()].filter((e) => !inGroup(e)).map((e) => e.pid);
  const survivors = [...(still(id) ? [id.pid] : []), ...[...tree.values()].filter(still).map((e) => e.pid)];
  return { pid: id.pid, graceful, forced, swept: escaped, survivors, duration_ms: Date.now() - started };
}
