/**
 * The compiled supervisor (native/supervise.c), built at install into dist/agentctl-supervise
 * where a C compiler is found (scripts/build-native.mjs). It does what the /bin/sh supervisor
 * script does (spawn/launch.ts) at a fraction of the cost: no `setsid` and `sleep` programs
 * to exec, so about 1 ms of CPU a start instead of about 8, and a waiting restart policy holds
 * well under 1 MB. Without it, or with AGENTCTL_SUPERVISOR=sh, the script runs as before.
 *
 * It is used only if it is a regular, executable file that only root or the invoking user can
 * change (as agentctl's own files are): one anyone else could replace would run with our rights.
 * This module sits one folder under dist/, as the bundle's entry (dist/cli/main.js) does, so
 * `../agentctl-supervise` names the same file from either.
 */
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Where the build puts it. */
export const NATIVE_SUPERVISOR = fileURLToPath(new URL('../agentctl-supervise', import.meta.url));

let found: string | null | undefined;

/** The compiled supervisor's path, or undefined when the shell script is to run (see above). */
export function nativeSupervisor(env: NodeJS.ProcessEnv, path = NATIVE_SUPERVISOR): string | undefined {
  if (env.AGENTCTL_SUPERVISOR === 'sh') return undefined;
  if (path !== NATIVE_SUPERVISOR) return trusted(path) ? path : undefined;
  if (found === undefined) found = trusted(path) ? path : null;
  return found ?? undefined;
}

function trusted(path: string): boolean {
  try {
    const st = statSync(path);
    const me = process.geteuid?.();
    return st.isFile() && (st.mode & 0o022) === 0 && (st.mode & 0o100) !== 0 && (st.uid === 0 || st.uid === me);
  } catch {
    return false;
  }
}
