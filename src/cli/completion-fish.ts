/** The fish completion script, from the command tree. */
import { type CmdSpec, HEADER, type OptSpec, topCommands } from './completion-tree.js';

const fq = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/** Not after `spawn ... --`: there the words are the child command's. */
const OWN = 'not __agentctl_after_dashdash';

function fishOpt(root: string, o: OptSpec, cond: string): string {
  const parts = [`complete -c ${root}`, `-n ${fq(cond)}`, `-l ${o.long.replace(/^--/, '')}`];
  if (o.short) parts.push(`-s ${o.short.replace(/^-/, '')}`);
  if (o.value === 'required') parts.push('-r');
  if (o.dynamic) parts.push(`-f -a ${fq(`(__agentctl_state ${o.dynamic})`)}`);
  else if (o.choices?.length) parts.push(`-f -a ${fq(o.choices.join(' '))}`);
  else if (o.path) parts.push('-F');
  parts.push(`-d ${fq(o.description)}`);
  return parts.join(' ');
}

/** The command the line runs is $argv[1]: its first word after agentctl's own options (whose values are skipped). */
const cmdHelper = (valued: readonly string[]) => [
  'function __agentctl_cmd',
  '    set -l tokens (commandline -opc)',
  '    set -e tokens[1]',
  '    while set -q tokens[1]',
  '        switch $tokens[1]',
  ...(valued.length ? [`            case ${valued.join(' ')}`, '                set -e tokens[1]'] : []),
  "            case '-*'",
  "            case '*'",
  '                test "$tokens[1]" = "$argv[1]"',
  '                return',
  '        end',
  '        set -e tokens[1]',
  '    end',
  '    return 1',
  'end',
];

const HELPERS = [
  'function __agentctl_after_dashdash',
  '    contains -- -- (commandline -opc)',
  'end',
  '# values from the state: agentctl __complete KIND, with the --state-dir of this line',
  'function __agentctl_state',
  '    set -l tokens (commandline -opc)',
  '    set -l sd',
  '    for i in (seq 2 (count $tokens))',
  '        switch $tokens[$i]',
  '            case --',
  '                break',
  '            case --state-dir',
  '                set -q tokens[(math $i + 1)]; and set sd --state-dir $tokens[(math $i + 1)]',
  "            case '--state-dir=*'",
  '                set sd $tokens[$i]',
  '        end',
  '    end',
  '    agentctl __complete $sd $argv (commandline -ct) 2>/dev/null',
  'end',
  '# after spawn ... --: the command and its arguments, as fish completes them',
  'function __agentctl_child',
  '    set -l tokens (commandline -opc)',
  '    set -l i (contains -i -- -- $tokens)',
  '    set -e tokens[1..$i]',
  '    __fish_complete_subcommand --commandline $tokens (commandline -ct)',
  'end',
];

export function fishCompletion(root: CmdSpec): string {
  const r = root.name;
  const cmds = topCommands(root);
  const valued = root.options.filter((o) => o.value === 'required').flatMap((o) => (o.short ? [o.long, o.short] : [o.long]));
  const lines = [`# fish completion for ${r}: ${HEADER}`, ...cmdHelper(valued), ...HELPERS, `complete -c ${r} -f`];
  for (const o of root.options) lines.push(fishOpt(r, o, o.rootOnly || o.long === '--help' ? `__fish_use_subcommand; and ${OWN}` : OWN));
  for (const c of cmds) lines.push(`complete -c ${r} -n '__fish_use_subcommand' -a ${c.name} -d ${fq(c.description)}`);
  for (const c of cmds) {
    const cond = `__agentctl_cmd ${c.name}; and ${OWN}`;
    for (const o of c.options) lines.push(fishOpt(r, o, cond));
    c.args.forEach((a, i) => {
      const when = a.after !== undefined && i > 0 ? `${cond}; and __fish_seen_subcommand_from ${a.after}` : cond;
      if (a.dynamic) lines.push(`complete -c ${r} -n ${fq(when)} -a ${fq(`(__agentctl_state ${a.dynamic})`)}`);
      // one of these words, until one is given
      else if (a.choices?.length) lines.push(`complete -c ${r} -n ${fq(`${when}; and not __fish_seen_subcommand_from ${a.choices.join(' ')}`)} -a ${fq(a.choices.join(' '))}`);
    });
    for (const s of c.subcommands) lines.push(`complete -c ${r} -n ${fq(cond)} -a ${s.name} -d ${fq(s.description)}`);
    if (c.passthrough) lines.push(`complete -c ${r} -n ${fq(`__agentctl_cmd ${c.name}; and __agentctl_after_dashdash`)} -a '(__agentctl_child)'`);
  }
  lines.push('');
  return lines.join('\n');
}
