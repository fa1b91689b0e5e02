/**
 * `agentctl __complete [--state-dir DIR] KIND [PREFIX]`: the hidden command the completion
 * scripts call for values that live in the state (core/candidates.ts), one a line, a tab and a
 * description after some. main.ts runs it before commander or any command module loads: a
 * completion runs on every TAB. Not in --help or the completion lists. The state folder is the
 * one the command line being completed names (the scripts pass its --state-dir through), else
 * AGENTCTL_STATE_DIR and the rest, as for every command. A state that cannot be read prints
 * nothing and exits 0: a completion never prints errors into the shell.
 */
import { CANDIDATE_KINDS, type CandidateKind, stateCandidates } from '../core/candidates.js';
import { resolveStateDir } from '../core/state.js';

export const COMPLETE_COMMAND = '__complete';

const USAGE = `agentctl: ${COMPLETE_COMMAND}: expected [--state-dir DIR] KIND [PREFIX], KIND one of ${CANDIDATE_KINDS.join(', ')}\n`;

/** Run it with the words after `__complete`; returns the exit code. */
export function runComplete(argv: readonly string[], out: (s: string) => void = (s) => process.stdout.write(s)): number {
  let stateDir: string | undefined;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--state-dir') stateDir = argv[++i] ?? '';
    else if (a.startsWith('--state-dir=')) stateDir = a.slice('--state-dir='.length);
    else rest.push(a);
  }
  const [kind, prefix = '', ...extra] = rest;
  if (kind === undefined || !(CANDIDATE_KINDS as readonly string[]).includes(kind) || extra.length) {
    process.stderr.write(USAGE);
    return 2;
  }
  if (stateDir === '') return 0; // an empty --state-dir is refused by every command: nothing to offer
  const { dir } = resolveStateDir(stateDir);
  const lines = stateCandidates(dir, kind as CandidateKind, prefix).map((c) => (c.info !== undefined ? `${c.value}\t${c.info}\n` : `${c.value}\n`));
  if (lines.length) out(lines.join(''));
  return 0;
}
