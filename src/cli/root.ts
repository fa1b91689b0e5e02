/** agentctl itself: its own options and its words for --help, and how an option's help line reads. */
import type { CommandDecl, OptionDecl } from '../core/declaration.js';

/** Options of agentctl itself, given before or after the command's name. */
export const GLOBAL_OPTIONS: readonly OptionDecl[] = [
  { flags: '--json', help: 'print one JSON document on stdout (errors too)' },
  { flags: '-q, --quiet', help: 'print nothing on success unless asked for data' },
  { flags: '--wide', help: 'do not fit tables and lines to the terminal (or to 80 columns when piped): nothing cut or wrapped' },
  { flags: '--state-dir <dir>', help: 'state folder (default: $AGENTCTL_STATE_DIR, $XDG_STATE_HOME/agentctl, ~/.local/state/agentctl)', path: 'dir' },
  { flags: '--config <file>', help: 'read this config file instead of ./agentctl.toml and ~/.config/agentctl/config.toml', path: 'file' },
  { flags: '--color', help: 'force colour on' },
  { flags: '--no-color', help: 'no colour (also NO_COLOR=1)' },
];

/** agentctl itself: its words for --help (the commands come from their modules). */
export const ROOT: CommandDecl = {
  name: 'agentctl',
  description: 'Keep one host healthy while it runs a fleet of AI coding agents.',
  options: GLOBAL_OPTIONS,
  examples: [
    'agentctl throttle-status',
    'agentctl throttle-status --max-level 1 && make heavy',
    'agentctl --json throttle-status --write /run/agentctl/resource_metrics.json',
    'agentctl config',
    'agentctl events --since 1h',
  ],
  exitCodes: '0 ok, 1 failed, 2 bad input, 69 refused, 75 try later, 78 config invalid.',
};

/** The help line of an option: its own words, and the config key its default comes from. */
export const optionHelp = (d: OptionDecl): string => (d.configKey ? `${d.help} (default: ${d.configKey})` : d.help);
