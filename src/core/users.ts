/**
 * Whose processes a command may act on: the invoking user's own, or with --all-users (root
 * only) anyone's; never agentctl itself, its ancestors or PID 1.
 */
import { UsageError } from './errors.js';
import { protectedPids } from './kill.js';
import { ownedByUs, type ProcDetail } from './proc.js';

/**
 * --all-users is for root only; without it, only our own processes are candidates: /proc/PID
 * ours (the listing's uid, cheap) and every user id of the process ours (ownedByUs), since
 * /proc/PID is root's for any process that is not dumpable: as root, another user's setuid
 * program, ssh-agent, or anything that asked prctl for it would otherwise count as root's.
 */
export function userFilter(allUsers: boolean, flag = '--all-users'): (p: Pick<ProcDetail, 'uid' | 'pid'>) => boolean {
  const me = process.getuid?.() ?? -1;
  if (allUsers && me !== 0) throw new UsageError(`${flag}: only root may act on other users' processes`);
  const guard = protectedPids();
  return (p) => !guard.has(p.pid) && (allUsers || (p.uid === me && ownedByUs(p.pid)));
}
