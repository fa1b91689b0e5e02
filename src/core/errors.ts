/**
 * Typed exits. Core code throws these; only the CLI top level turns them into
 * `process.exitCode` and a message. Never branch on message text: branch on `code`.
 */

/** Exit codes, as in the design contract. */
export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  /** refused: circuit open or dependency unhealthy */
  refused: 69,
  /** try later: no slot, throttled, cooldown, rate limit, a --wait that ran out */
  tryLater: 75,
  /** configuration invalid */
  config: 78,
} as const;

/** An error that ends the command with a specific exit code and a one-line message. */
export class ExitError extends Error {
  readonly exitCode: number;
  /** A short machine-readable reason, e.g. "throttled", "config_invalid". */
  readonly reason: string;
  /** Extra structured data for `--json` output. */
  readonly details: Record<string, unknown> | undefined;

  constructor(exitCode: number, message: string, reason = 'failed', details?: Record<string, unknown>) {
    super(message);
    this.name = 'ExitError';
    this.exitCode = exitCode;
    this.reason = reason;
    this.details = details;
  }
}

/** Bad input: a flag, value or argument that is not accepted. Exit 2, nothing changed. */
export class UsageError extends ExitError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(EXIT.usage, message, 'usage', details);
    this.name = 'UsageError';
  }
}

/** Invalid configuration: names the file (or variable), key and line. Exit 78. */
export class ConfigError extends ExitError {
  readonly file: string | undefined;
  readonly key: string | undefined;
  readonly line: number | undefined;

  constructor(message: string, where: { file?: string; key?: string; line?: number } = {}) {
    super(EXIT.config, message, 'config_invalid', { ...where });
    this.name = 'ConfigError';
    this.file = where.file;
    this.key = where.key;
    this.line = where.line;
  }
}

/** The state database cannot be used (not a database, corrupt, locked too long, unwritable). */
export class StateError extends ExitError {
  readonly file: string;

  constructor(message: string, file: string, exitCode: number = EXIT.failed, reason = 'state_unusable') {
    super(exitCode, message, reason, { file });
    this.name = 'StateError';
    this.file = file;
  }
}
