/**
 * Shell completion scripts generated from the command tree (as plain data, so this module
 * needs no commander). The checked-in completions/ are this module's output; a test fails
 * when they go stale.
 */

export interface OptSpec {
  readonly long: string;
  readonly short?: string | undefined;
  readonly description: string;
  /** takes a value: 'required', 'optional', or 'none' for a switch */
  readonly value: 'required' | 'optional' | 'none';
  readonly valueName?: string | undefined;
  readonly choices?: readonly string[] | undefined;
  /** 'file' or 'dir' when the value is a path */
  readonly path?: 'file' | 'dir' | undefined;
}

export interface CmdSpec {
  readonly name: string;
  readonly description: string;
  readonly options: readonly OptSpec[];
  readonly args: ReadonlyArray<{ readonly name: string; readonly choices?: readonly string[] | undefined }>;
  readonly subcommands: readonly CmdSpec[];
}

const HEADER = 'generated from the command tree by scripts/gen-completions.mjs; do not edit';

const words = (xs: readonly string[]) => xs.join(' ');
const optWords = (opts: readonly OptSpec[]) => opts.flatMap((o) => (o.short ? [o.long, o.short] : [o.long]));

function allCommands(root: CmdSpec): Array<{ path: string[]; cmd: CmdSpec }> {
  const out: Array<{ path: string[]; cmd: CmdSpec }> = [];
  const walk = (c: CmdSpec, path: string[]) => {
    for (const s of c.subcommands) {
      out.push({ path: [...path, s.name], cmd: s });
      walk(s, [...path, s.name]);
    }
  };
  walk(root, []);
  return out;
}

export function bashCompletion(root: CmdSpec): string {
  const globals = root.options;
  const cmds = allCommands(root).filter((c) => c.path.length === 1);
  const everyOpt = [...globals, ...cmds.flatMap((c) => c.cmd.options)];
  const byKind = (pred: (o: OptSpec) => boolean) => [...new Set(everyOpt.filter(pred).flatMap((o) => (o.short ? [o.long, o.short] : [o.long])))];
  const dirOpts = byKind((o) => o.path === 'dir');
  const fileOpts = byKind((o) => o.path === 'file');
  const choiceOpts = everyOpt.filter((o) => o.choices && o.choices.length);
  const valueOpts = byKind((o) => o.value === 'required' && !o.path && !(o.choices && o.choices.length));
  const lines = [
    `# bash completion for ${root.name}: ${HEADER}`,
    `_${root.name}() {`,
    '  local cur prev cmd i',
    '  cur="${COMP_WORDS[COMP_CWORD]}"',
    '  prev="${COMP_WORDS[COMP_CWORD-1]}"',
    `  local global_opts="${words(optWords(globals))}"`,
    '  cmd=""',
    '  for ((i = 1; i < COMP_CWORD; i++)); do',
    '    case "${COMP_WORDS[i]}" in',
    `      ${cmds.map((c) => c.cmd.name).join('|')}) cmd="\${COMP_WORDS[i]}"; break ;;`,
    '    esac',
    '  done',
    '  case "$prev" in',
  ];
  if (dirOpts.length) lines.push(`    ${dirOpts.join('|')}) COMPREPLY=($(compgen -d -- "$cur")); return ;;`);
  if (fileOpts.length) lines.push(`    ${fileOpts.join('|')}) COMPREPLY=($(compgen -f -- "$cur")); return ;;`);
  for (const o of choiceOpts) lines.push(`    ${o.long}) COMPREPLY=($(compgen -W "${words(o.choices!)}" -- "$cur")); return ;;`);
  if (valueOpts.length) lines.push(`    ${valueOpts.join('|')}) COMPREPLY=(); return ;;`);
  lines.push('  esac', '  case "$cmd" in', `    "") COMPREPLY=($(compgen -W "$global_opts ${words(cmds.map((c) => c.cmd.name))}" -- "$cur")) ;;`);
  for (const { cmd } of cmds) {
    const argChoices = cmd.args.flatMap((a) => a.choices ?? []);
    const subs = cmd.subcommands.map((s) => s.name);
    lines.push(`    ${cmd.name}) COMPREPLY=($(compgen -W "$global_opts ${words([...optWords(cmd.options), ...argChoices, ...subs])}" -- "$cur")) ;;`);
  }
  lines.push('  esac', '}', `complete -F _${root.name} ${root.name}`, '');
  return lines.join('\n');
}

const zq = (s: string) => s.replace(/'/g, `'\\''`);
const zdesc = (s: string) =>
  zq(s)
    .replace(/[[\]]/g, (m) => `\\${m}`)
    .replace(/:/g, '\\:');

function zshOpt(o: OptSpec): string[] {
  const action = o.choices?.length ? `(${o.choices.join(' ')})` : o.path === 'dir' ? '_files -/' : o.path === 'file' ? '_files' : ' ';
  const name = o.valueName ?? 'value';
  const spec = (flag: string) => {
    if (o.value === 'none') return `'${flag}[${zdesc(o.description)}]'`;
    if (o.value === 'optional') return `'${flag}=-[${zdesc(o.description)}]::${name}:${action}'`;
    return `'${flag}=[${zdesc(o.description)}]:${name}:${action}'`;
  };
  return o.short ? [spec(o.long), spec(o.short)] : [spec(o.long)];
}

export function zshCompletion(root: CmdSpec): string {
  const cmds = allCommands(root).filter((c) => c.path.length === 1);
  const lines = [
    `#compdef ${root.name}`,
    `# zsh completion for ${root.name}: ${HEADER}`,
    `_${root.name}() {`,
    '  local -a commands global_opts',
    '  local state line',
    `  commands=(${cmds.map((c) => `'${c.cmd.name}:${zdesc(c.cmd.description)}'`).join(' ')})`,
    `  global_opts=(${root.options.flatMap(zshOpt).join(' ')})`,
    "  _arguments -C $global_opts '1: :->cmd' '*:: :->args'",
    '  case $state in',
    "    cmd) _describe 'command' commands ;;",
    '    args)',
    '      case $words[1] in',
  ];
  for (const { cmd } of cmds) {
    const args = cmd.args.map((a, i) => `'${i + 1}:${a.name}:${a.choices?.length ? `(${a.choices.join(' ')})` : ' '}'`);
    const subs = cmd.subcommands.length ? [`'1:subcommand:(${cmd.subcommands.map((s) => s.name).join(' ')})'`] : [];
    lines.push(`        ${cmd.name}) _arguments $global_opts ${[...cmd.options.flatMap(zshOpt), ...args, ...subs].join(' ')} ;;`);
  }
  lines.push('      esac ;;', '  esac', '}', `_${root.name} "$@"`, '');
  return lines.join('\n');
}

const fq = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

function fishOpt(root: string, o: OptSpec, cond?: string): string {
  const parts = [`complete -c ${root}`];
  if (cond) parts.push(`-n ${fq(cond)}`);
  parts.push(`-l ${o.long.replace(/^--/, '')}`);
  if (o.short) parts.push(`-s ${o.short.replace(/^-/, '')}`);
  if (o.value === 'required') parts.push('-r');
  if (o.choices?.length) parts.push(`-f -a ${fq(o.choices.join(' '))}`);
  else if (o.path) parts.push('-F');
  parts.push(`-d ${fq(o.description)}`);
  return parts.join(' ');
}

export function fishCompletion(root: CmdSpec): string {
  const cmds = allCommands(root).filter((c) => c.path.length === 1);
  const lines = [`# fish completion for ${root.name}: ${HEADER}`, `complete -c ${root.name} -f`];
  for (const o of root.options) lines.push(fishOpt(root.name, o));
  for (const { cmd } of cmds) lines.push(`complete -c ${root.name} -n '__fish_use_subcommand' -a ${cmd.name} -d ${fq(cmd.description)}`);
  for (const { cmd } of cmds) {
    const cond = `__fish_seen_subcommand_from ${cmd.name}`;
    for (const o of cmd.options) lines.push(fishOpt(root.name, o, cond));
    const choices = cmd.args.flatMap((a) => a.choices ?? []);
    if (choices.length) lines.push(`complete -c ${root.name} -n ${fq(cond)} -a ${fq(choices.join(' '))}`);
    for (const s of cmd.subcommands) lines.push(`complete -c ${root.name} -n ${fq(cond)} -a ${s.name} -d ${fq(s.description)}`);
  }
  lines.push('');
  return lines.join('\n');
}

export type Shell = 'bash' | 'zsh' | 'fish';
export const SHELLS: readonly Shell[] = ['bash', 'zsh', 'fish'];
export const COMPLETION_FILES: Record<Shell, string> = { bash: 'agentctl.bash', zsh: '_agentctl', fish: 'agentctl.fish' };

export function completionScript(shell: Shell, root: CmdSpec): string {
  return shell === 'bash' ? bashCompletion(root) : shell === 'zsh' ? zshCompletion(root) : fishCompletion(root);
}
