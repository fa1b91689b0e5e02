/**
 * What a command declares beside its run(): its name, arguments and options, each option's
 * default written once (as clipanion's `Option.String('--grace', '30s')` in corepack). The face
 * builds the parser, `--help`, the completion scripts and the docs check from it, and the
 * command reads its options with the defaults already applied: stop's `opts.grace` is always
 * set. Plain data and types only, so loading a declaration costs nothing.
 */

export interface OptionDecl {
  /**
   * The flags and the value, in commander's syntax, which is also the option's type:
   * `--dry-run` a switch, `--grace <duration>` takes a value, `--watch [interval]` may take one,
   * `--check <ids...>` takes several, `-d, --detach` has a short form too.
   */
  readonly flags: string;
  /** one line for --help and the completion scripts */
  readonly help: string;
  /** the value when the option is not given */
  readonly default?: string;
  /** the value when the option is given without one (`--watch` alone is `--watch 2s`) */
  readonly preset?: string;
  /**
   * The config key the value falls back to when the option is not given (e.g. `reap.grace`):
   * the config decides, so the command reads it; --help and the docs check name it.
   */
  readonly configKey?: string;
  readonly choices?: readonly string[];
  /** the value is a path: completion offers files, or folders */
  readonly path?: 'file' | 'dir';
}

export interface ArgumentDecl {
  /** `<shell>` required, `[name]` optional, `[names...]` any number */
  readonly name: string;
  readonly help?: string;
  readonly choices?: readonly string[];
  /** the value when the argument is not given */
  readonly default?: string;
}

export interface CommandDecl {
  readonly name: string;
  readonly description: string;
  /** internal plumbing (`_end-run`): left out of --help and completions */
  readonly hidden?: boolean;
  /** the usage line, when commander's own does not say it (spawn's `-- CMD [ARGS...]`) */
  readonly usage?: string;
  readonly args?: readonly ArgumentDecl[];
  readonly options?: readonly OptionDecl[];
  /** command lines --help shows under "Examples:" */
  readonly examples?: readonly string[];
  /** --help's "Exit codes:" line, for a command that has one */
  readonly exitCodes?: string;
}

/**
 * The option values a command's run() gets, keyed by the camel-cased long flag (`--dry-run` is
 * `dryRun`), defaults applied: a switch gives true (or false for `--no-x`), an option with a
 * value its text, a variadic one (`<ids...>`) a list of texts. Absent without a default.
 */
export type OptionValues = Readonly<Record<string, string | boolean | readonly string[] | undefined>>;

/**
 * The option values a command gets when none is given: each declared default under its
 * camel-cased long flag, as the parser applies them. For calling run() directly (tests, the
 * library) with the same defaults the command line has.
 */
export function optionDefaults(decl: CommandDecl): OptionValues {
  const out: Record<string, string> = {};
  for (const o of decl.options ?? []) {
    const long = /--([a-z][a-z0-9-]*)/.exec(o.flags)?.[1];
    if (long !== undefined && o.default !== undefined) out[long.replace(/-([a-z0-9])/g, (_m, c: string) => c.toUpperCase())] = o.default;
  }
  return out;
}
