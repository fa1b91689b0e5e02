/** The zsh completion script (`#compdef agentctl`), from the command tree. */
import { type ArgSpec, type CmdSpec, HEADER, type OptSpec, topCommands } from './completion-tree.js';

const zq = (s: string) => s.replace(/'/g, `'\\''`);
const zdesc = (s: string) =>
  zq(s)
    .replace(/[[\]]/g, (m) => `\\${m}`)
    .replace(/:/g, '\\:');

function zshAction(o: { choices?: readonly string[] | undefined; path?: 'file' | 'dir' | undefined; dynamic?: string | undefined }): string {
  if (o.dynamic) return `_agentctl_state ${o.dynamic}`;
  return o.choices?.length ? `(${o.choices.join(' ')})` : o.path === 'dir' ? '_files -/' : o.path === 'file' ? '_files' : ' ';
}

function zshOpt(o: OptSpec): string[] {
  const action = zshAction(o);
  const name = o.valueName ?? 'value';
  const spec = (flag: string) => {
    if (o.value === 'none') return `'${flag}[${zdesc(o.description)}]'`;
    if (o.value === 'optional') return `'${flag}=-[${zdesc(o.description)}]::${name}:${action}'`;
    // several values (--check a b): the option may be given again for each
    return `'${o.variadic ? '*' : ''}${flag}=[${zdesc(o.description)}]:${name}:${action}'`;
  };
  return o.short ? [spec(o.long), spec(o.short)] : [spec(o.long)];
}

function zshArg(a: ArgSpec, i: number): string {
  const action = zshAction(a);
  // `breaker reset NAME`: offered after that word only ($words[1] is the command)
  const guarded = a.after !== undefined && i > 0 && action.trim() ? `{ [[ $words[${i + 1}] == ${a.after} ]] && ${action} }` : action;
  return `'${a.variadic ? '*' : i + 1}:${a.name}:${guarded}'`;
}

const HELPERS = [
  '# values from the state: agentctl __complete KIND, with the --state-dir of this line',
  '# (KIND comes last: _arguments puts its compadd options before it)',
  '_agentctl_state() {',
  '  local kind=${argv[-1]}',
  '  local -a sd cands',
  '  local i w l',
  '  for ((i = 2; i < $#line_words; i++)); do',
  '    w=$line_words[i]',
  '    [[ $w == -- ]] && break',
  '    if [[ $w == --state-dir ]]; then w=${(Q)line_words[i+1]}; sd=(--state-dir ${w/#\\~/$HOME})',
  '    elif [[ $w == --state-dir=* ]]; then w=${(Q)${w#--state-dir=}}; sd=(--state-dir ${w/#\\~/$HOME}); fi',
  '  done',
  '  # one candidate a line, a tab before its description: value:description for _describe',
  '  for l in ${(f)"$(agentctl __complete $sd $kind 2>/dev/null)"}; do',
  '    cands+=("${l/$\'\\t\'/:}")',
  '  done',
  '  _describe -t $kind $kind cands "${(@)argv[1,-2]}"',
  '}',
];

export function zshCompletion(root: CmdSpec): string {
  const cmds = topCommands(root);
  const globals = root.options.filter((o) => !o.rootOnly && o.long !== '--help');
  const own = root.options.filter((o) => !globals.includes(o));
  const lines = [
    `#compdef ${root.name}`,
    `# zsh completion for ${root.name}: ${HEADER}`,
    ...HELPERS,
    `_${root.name}() {`,
    // not `commands`: that is zsh's table of external commands, which _normal reads after `spawn --`
    '  local -a agentctl_commands global_opts root_opts line_words',
    '  local state line',
    '  line_words=("${words[@]}")',
    `  agentctl_commands=(${cmds.map((c) => `'${c.name}:${zdesc(c.description)}'`).join(' ')})`,
    `  global_opts=(${globals.flatMap(zshOpt).join(' ')})`,
    `  root_opts=(${own.flatMap(zshOpt).join(' ')})`,
    "  _arguments -C $global_opts $root_opts '1: :->cmd' '*:: :->args'",
    '  case $state in',
    "    cmd) _describe 'command' agentctl_commands ;;",
    '    args)',
    '      case $words[1] in',
  ];
  for (const c of cmds) {
    const spec = `_arguments $global_opts ${[...c.options.flatMap(zshOpt), ...c.args.filter((a) => !(c.passthrough && a.variadic)).map(zshArg)].join(' ')}`;
    if (!c.passthrough) {
      lines.push(`        ${c.name}) ${spec} ;;`);
      continue;
    }
    // after `--`: the command and its arguments, as zsh completes them on a line of their own
    lines.push(
      `        ${c.name})`,
      '          local n=${words[(i)--]}',
      '          if (( n < CURRENT )); then',
      '            shift n words; (( CURRENT -= n )); _normal',
      '          else',
      `            ${spec}`,
      '          fi ;;',
    );
  }
  lines.push('      esac ;;', '  esac', '}', `_${root.name} "$@"`, '');
  return lines.join('\n');
}
