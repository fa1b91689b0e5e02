/**
 * The compiled supervisor (native/supervise.c), built by `npm ci` / `npm run build` into
 * dist/agentctl-supervise where a C compiler is found (scripts/build-native.mjs). It does what
 * the /bin/sh supervisor script does (spawn/launch.ts) at a fraction of the cost: no `setsid`
 * and `sleep` programs to exec, so about 1 ms of CPU a start instead of about 8, and under 1 MB
 * while a restart policy waits. Without it, or with AGENTCTL_SUPERVISOR=sh, the script runs.
 *
 * It is used only if it is a regular executable file, not a link, in a folder, that only root
 * or the invoking user can change (as agentctl's own files are), and an ELF program for this
 * machine: a binary built elsewhere would be read by execvp's fallback as a shell script,
 * fail, and lose the run. This module sits one folder under dist/, as the bundle's entry
 * (dist/cli/main.js) does, so `../agentctl-supervise` names the same file from either.
 */
import { closeSync, constants, lstatSync, openSync, readSync } from 'node:fs';
import { endianness } from 'node:os';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where the build puts it. */
export const NATIVE_SUPERVISOR = fileURLToPath(new URL('../agentctl-supervise', import.meta.url));

/** ELF e_machine per Node architecture (Linux); elsewhere the shell supervisor runs. */
const MACHINE: Readonly<Record<string, number>> = { x64: 62, arm64: 183, ia32: 3, arm: 40, riscv64: 243, ppc64: 21, s390x: 22, loong64: 258 };

let found: string | null | undefined;

/** Which supervisor detached runs get here, and why (doctor's config.supervisor). */
export function supervisorInUse(env: NodeJS.ProcessEnv, path = NATIVE_SUPERVISOR): { compiled: boolean; value: string } {
  if (env.AGENTCTL_SUPERVISOR === 'sh') return { compiled: false, value: '/bin/sh script (AGENTCTL_SUPERVISOR=sh)' };
  const why = whyNotTrusted(path);
  if (why === undefined && nativeSupervisor(env, path)) return { compiled: true, value: `compiled: ${path}` };
  return { compiled: false, value: `/bin/sh script: ${path} ${why ?? 'could not be started here'}` };
}

/** The compiled supervisor's path, or undefined when the shell script is to run (see above). */
export function nativeSupervisor(env: NodeJS.ProcessEnv, path = NATIVE_SUPERVISOR): string | undefined {
  if (env.AGENTCTL_SUPERVISOR === 'sh') return undefined;
  if (path !== NATIVE_SUPERVISOR) return trusted(path) ? path : undefined;
  if (found === undefined) found = trusted(path) ? path : null;
  return found ?? undefined;
}

/** Forget an earlier yes: the binary could not be started (gone since, a mount that forbids exec). */
export function distrustNativeSupervisor(): void {
  found = null;
}

const ours = (uid: number) => uid === 0 || uid === process.geteuid?.();

const trusted = (path: string): boolean => whyNotTrusted(path) === undefined;

/** Why the file at `path` is not used as the supervisor, or undefined when it is fit to be. */
function whyNotTrusted(path: string): string | undefined {
  try {
    const st = lstatSync(path, { throwIfNoEntry: false });
    if (!st) return 'is not there (built by npm ci or npm run build in a checkout, where a C compiler is found; package installs do not carry it)';
    if (!st.isFile()) return 'is not a plain file';
    if ((st.mode & 0o100) === 0) return 'is not executable';
    if ((st.mode & 0o022) !== 0 || !ours(st.uid)) return 'can be changed by another user';
    const dir = lstatSync(dirname(path));
    if (!dir.isDirectory() || (dir.mode & 0o022) !== 0 || !ours(dir.uid)) return 'is in a folder another user can change';
    return elfForThisMachine(fileHead(path, 20)) ? undefined : 'is not a program for this machine';
  } catch (err) {
    return `cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
  }
}

/** The first bytes of a file, up to `n` (a FIFO or device planted there never blocks the read). */
export function fileHead(path: string, n: number): Buffer {
  const head = Buffer.alloc(n);
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  try {
    return head.subarray(0, readSync(fd, head, 0, n, 0));
  } finally {
    closeSync(fd);
  }
}

/** Does a file starting with `head` (20 bytes or more) hold an ELF executable of this machine's class, byte order and architecture? */
export function elfForThisMachine(head: Buffer): boolean {
  const want = MACHINE[process.arch];
  if (want === undefined || process.platform !== 'linux' || head.length < 20) return false;
  if (head.readUInt32BE(0) !== 0x7f454c46) return false;
  const bits64 = ['x64', 'arm64', 'riscv64', 'ppc64', 's390x', 'loong64'].includes(process.arch);
  if (head[4] !== (bits64 ? 2 : 1)) return false;
  const le = endianness() === 'LE';
  if (head[5] !== (le ? 1 : 2)) return false;
  return (le ? head.readUInt16LE(18) : head.readUInt16BE(18)) === want;
}
