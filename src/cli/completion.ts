/**
 * Shell completion scripts generated from the command tree (completion-tree.ts: plain data, so
 * this module needs no commander). The checked-in completions/ are this module's output; a test
 * fails when they go stale. Values that live in the state (run names, groups, breakers, dead
 * letters) are not in the scripts: they call `agentctl __complete KIND` (complete.ts) on TAB,
 * passing the --state-dir of the line being completed through.
 */
import { type ArgSpec, type CmdSpec, HEADER, type OptSpec, optWords, topCommands, withBuiltins, words } from './completion-tree.js';
import { fishCompletion } from './completion-fish.js';
import { zshCompletion } from './completion-zsh.js';

export type { ArgSpec, CmdSpec, OptSpec } from './completion-tree.js';

/** agentctl's own options a command also takes (not --help, which each command has, nor --version). */
export const globalOptions = (root: CmdSpec): OptSpec[] => root.options.filter((o) => !o.rootOnly && o.long !== '--help');

/** The shared helpers: state values through `agentctl __complete`, and the shell's own completion after `spawn --`. */
const BASH_HELPERS = [
  '# values from the state: agentctl __complete KIND PREFIX, with the --state-dir of this line',
  '_agentctl_state() {',
  '  local sd=() w i line',
  '  for ((i = 1; i < COMP_CWORD; i++)); do',
  '    w="${COMP_WORDS[i]}"',
  '    case "$w" in',
  '      --) break ;;',
  '      --state-dir)',
  '        w="${COMP_WORDS[i+1]}"',
  '        [[ $w == = ]] && w="${COMP_WORDS[i+2]}"',
  '        sd=(--state-dir "${w/#\\~/$HOME}") ;;',
  '      --state-dir=*) w="${w#--state-dir=}"; sd=(--state-dir "${w/#\\~/$HOME}") ;;',
  '    esac',
  '  done',
  '  # one candidate a line, read as data (never through compgen -W, which expands words)',
  '  while IFS= read -r line; do COMPREPLY+=("${line%%$\'\\t\'*}"); done < <(agentctl __complete "${sd[@]}" "$1" "$cur" 2>/dev/null)',
  '}',
  '# after spawn ... --: the command and its arguments, as the shell completes them',
  '_agentctl_command() {',
  '  if declare -F _command_offset > /dev/null; then _command_offset "$1"; return; fi',
  '  compopt -o filenames 2> /dev/null',
  '  if ((COMP_CWORD == $1)); then',
  '    mapfile -t COMPREPLY < <(compgen -c -- "$cur" | sort -u)',
  '  else',
  '    mapfile -t COMPREPLY < <(compgen -f -- "$cur")',
  '  fi',
  '}',
];

/** Where the command is, and what came after it: its positional words so far, the last variadic option, a `--`. */
function bashScan(root: CmdSpec, cmds: readonly CmdSpec[]): string[] {
  const globalValued = optWords(globalOptions(root).filter((o) => o.value === 'required'));
  const every = [...globalOptions(root), ...cmds.flatMap((c) => c.options)];
  const variadic = [...new Set(optWords(every.filter((o) => o.variadic)))];
  const valued = [...new Set(optWords(every.filter((o) => o.value === 'required' && !o.variadic)))];
  return [
    '  cmd=""',
    '  for ((i = 1; i < COMP_CWORD; i++)); do',
    '    case "${COMP_WORDS[i]}" in',
    ...(globalValued.length ? [`      ${globalValued.join('|')}) ((i++)) ;;`] : []),
    `      ${cmds.map((c) => c.name).join('|')}) cmd="\${COMP_WORDS[i]}"; break ;;`,
    '    esac',
    '  done',
    '  for ((j = i + 1; j < COMP_CWORD; j++)); do',
    '    w="${COMP_WORDS[j]}"',
    '    case "$w" in',
    '      --) dd=$j; break ;;',
    ...(variadic.length ? [`      ${variadic.join('|')}) varopt="$w" ;;`] : []),
    ...(valued.length ? [`      ${valued.join('|')}) varopt=""; ((j++)) ;;`] : []),
    '      -*) varopt="" ;;',
    '      *) [[ -z $varopt ]] && pos+=("$w") ;;',
    '    esac',
    '  done',
  ];
}

const bashWords = (ws: readonly string[]) => `COMPREPLY=($(compgen -W "${words(ws)}" -- "$cur"))`;

/** What a value after an option is: folders, files, choices, the state's, or nothing to offer. */
function bashValues(root: CmdSpec, cmds: readonly CmdSpec[]): string[] {
  const every = [...globalOptions(root), ...cmds.flatMap((c) => c.options)];
  const byKind = (pred: (o: OptSpec) => boolean) => [...new Set(optWords(every.filter(pred)))];
  const lines = ['  case "$cmd:$prev" in'];
  for (const c of cmds) for (const o of c.options.filter((x) => x.dynamic)) lines.push(`    ${c.name}:${optWords([o]).join(`|${c.name}:`)}) _agentctl_state ${o.dynamic}; return ;;`);
  lines.push('  esac', '  case "$prev" in');
  const dirs = byKind((o) => o.path === 'dir');
  const files = byKind((o) => o.path === 'file');
  if (dirs.length) lines.push(`    ${dirs.join('|')}) COMPREPLY=($(compgen -d -- "$cur")); return ;;`);
  if (files.length) lines.push(`    ${files.join('|')}) COMPREPLY=($(compgen -f -- "$cur")); return ;;`);
  const choice = every.filter((o) => o.choices?.length);
  for (const o of choice) lines.push(`    ${optWords([o]).join('|')}) ${bashWords(o.choices!)}; return ;;`);
  const plain = byKind((o) => o.value === 'required' && !o.path && !o.choices?.length && !o.dynamic);
  if (plain.length) lines.push(`    ${plain.join('|')}) COMPREPLY=(); return ;;`);
  lines.push('  esac');
  // more values of a variadic option (--check a b ...)
  const more = choice.filter((o) => o.variadic);
  if (more.length) {
    lines.push('  if [[ -n $varopt && $cur != -* ]]; then', '    case "$varopt" in');
    for (const o of more) lines.push(`      ${optWords([o]).join('|')}) ${bashWords(o.choices!)}; return ;;`);
    lines.push('    esac', '  fi');
  }
  return lines;
}

/** The positional word at the cursor: choices, or values from the state; empty when the command declares none there. */
function bashArgs(args: readonly ArgSpec[]): string[] {
  const out: string[] = [];
  args.forEach((a, k) => {
    const offer = a.dynamic ? `_agentctl_state ${a.dynamic}` : a.choices?.length ? bashWords(a.choices) : undefined;
    if (!offer) return;
    const guard = a.after !== undefined && k > 0 ? `[[ \${pos[${k - 1}]} == ${a.after} ]] && ` : '';
    out.push(`      if ((\${#pos[@]} ${a.variadic ? '>=' : '=='} ${k})); then ${guard}${offer}; return; fi`);
  });
  return out.length ? ['      if [[ $cur != -* ]]; then', ...out.map((l) => `  ${l}`), '      fi'] : [];
}

export function bashCompletion(root: CmdSpec): string {
  const cmds = topCommands(root);
  const own = root.options.filter((o) => !globalOptions(root).includes(o));
  const lines = [
    `# bash completion for ${root.name}: ${HEADER}`,
    ...BASH_HELPERS,
    `_${root.name}() {`,
    '  local cur prev cmd i j w varopt="" dd=0',
    '  local -a pos=()',
    '  COMPREPLY=()',
    '  cur="${COMP_WORDS[COMP_CWORD]}"',
    '  prev="${COMP_WORDS[COMP_CWORD-1]}"',
    `  local global_opts="${words(optWords(globalOptions(root)))}"`,
    ...bashScan(root, cmds),
  ];
  for (const c of cmds.filter((x) => x.passthrough)) lines.push(`  if ((dd)) && [[ $cmd == ${c.name} ]]; then _agentctl_command $((dd + 1)); return; fi`);
  lines.push(...bashValues(root, cmds), '  case "$cmd" in', `    "") COMPREPLY=($(compgen -W "$global_opts ${words([...optWords(own), ...cmds.map((c) => c.name)])}" -- "$cur")) ;;`);
  for (const c of cmds) {
    lines.push(`    ${c.name})`, ...bashArgs(c.args), `      COMPREPLY=($(compgen -W "$global_opts ${words(optWords(c.options))}" -- "$cur")) ;;`);
  }
  lines.push('  esac', '}', `complete -F _${root.name} ${root.name}`, '');
  return lines.join('\n');
}

export type Shell = 'bash' | 'zsh' | 'fish';
export const SHELLS: readonly Shell[] = ['bash', 'zsh', 'fish'];
export const COMPLETION_FILES: Record<Shell, string> = { bash: 'agentctl.bash', zsh: '_agentctl', fish: 'agentctl.fish' };

/** The script for `shell`, from the declared tree (commander's -h/--help, --version and help added here). */
export function completionScript(shell: Shell, root: CmdSpec): string {
  const tree = withBuiltins(root);
  return shell === 'bash' ? bashCompletion(tree) : shell === 'zsh' ? zshCompletion(tree) : fishCompletion(tree);
}
