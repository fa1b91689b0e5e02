/**
 * Other processes' text is data, never terminal commands (docs/security.md).
 *
 * `printable` is the one escaper: everything agentctl shows a person that it did not write
 * itself (command lines, run names read back from the state, event reasons, paths, error
 * text) goes through it, so `exec -a $'claude \e]0;PWNED\a\e[2J'` cannot set a title, clear a
 * screen, or forge a line in cron mail. `redactArgv` and `redactText` are the one redactor of
 * secret-shaped arguments; `showArgv` / `showCommand` do both, in that order.
 *
 * JSON output needs no escaping (JSON.stringify escapes C0 controls); it is redacted the same.
 */

/** Tab, newline and carriage return as the two characters a C string would use. */
const NAMED: Readonly<Record<number, string>> = { 0x09: '\\t', 0x0a: '\\n', 0x0d: '\\r' };

/**
 * Code points shown escaped: C0 controls, DEL, C1 controls (0x80-0x9f), the bidi embeddings,
 * overrides and isolates (U+202A-202E, U+2066-2069) and marks (U+200E, U+200F, U+061C), the
 * Unicode line and paragraph separators (U+2028, U+2029), and lone surrogates.
 */
function escaped(cp: number): boolean {
  return (
    cp < 0x20 ||
    (cp >= 0x7f && cp <= 0x9f) ||
    (cp >= 0x202a && cp <= 0x202e) ||
    (cp >= 0x2066 && cp <= 0x2069) ||
    cp === 0x200e ||
    cp === 0x200f ||
    cp === 0x061c ||
    cp === 0x2028 ||
    cp === 0x2029 ||
    (cp >= 0xd800 && cp <= 0xdfff)
  );
}

function escapeOne(cp: number): string {
  return NAMED[cp] ?? (cp <= 0xff ? `\\x${cp.toString(16).padStart(2, '0')}` : `\\u{${cp.toString(16)}}`);
}

/** Anything to escape? (the fast path: most text has nothing) */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]/;

/**
 * Text safe to print on a terminal, in one line: control characters shown escaped (`\n`, `\t`,
 * `\r`, other C0/DEL/C1 as `\xHH`, so ESC is `\x1b`; bidi controls, U+2028/9 and lone
 * surrogates as `\u{HHHH}`). A backslash is left as it is, so escaping twice changes nothing
 * (a literal `\x1b` typed in a command line looks the same as an escaped ESC: `--json` has the
 * exact text). With `max`, text longer than `max` characters (counted after escaping) is cut
 * to `max` with a final `…`; an escape is never cut in half.
 */
export function printable(s: string, max?: number): string {
  if (!UNSAFE.test(s) && (max === undefined || s.length <= max)) return s;
  const pieces: Array<readonly [text: string, width: number]> = [];
  let width = 0;
  for (let i = 0; i < s.length;) {
    const cp = s.codePointAt(i)!;
    const size = cp > 0xffff ? 2 : 1; // a pair is one code point; a lone surrogate one unit
    const piece: readonly [string, number] = escaped(cp) ? [escapeOne(cp), escapeOne(cp).length] : [s.slice(i, i + size), 1];
    pieces.push(piece);
    width += piece[1];
    i += size;
  }
  if (max === undefined || width <= max) return pieces.map((p) => p[0]).join('');
  const room = Math.max(1, max) - 1; // what is left beside the ellipsis
  let out = '';
  let used = 0;
  for (const [text, w] of pieces) {
    if (used + w > room) break;
    out += text;
    used += w;
  }
  return `${out}…`;
}

/** What a redacted value is replaced by. `dlq retry` refuses a command that contains it. */
export const REDACTED = '<redacted>';

/**
 * Option names whose value is a secret: `--api-key`, `--token`, `--password`, `--secret` and
 * names ending in them (`--github-token`, `--db-password`, `--client-secret`), also
 * `--apikey`, `--access-key`, `--secret-key`, `--passwd`. Not: `--tokens`, `--max-tokens`,
 * `--key`, `--key-file`, `--token-file`, `--password-file` (counts, names and paths).
 */
const FLAG_NAME = String.raw`--?(?:[a-z0-9]+[-_])*(?:api[-_]?key|access[-_]key|secret[-_]key|token|password|passwd|secret)`;
const SECRET_FLAG = new RegExp(`^${FLAG_NAME}$`, 'i');

/** `NAME=value` where NAME ends in _KEY, _TOKEN, _SECRET, PASSWORD or PASSWD (any case). */
const SECRET_ASSIGN = /(^|[\s;&|('"`])([A-Za-z_][A-Za-z0-9_]*(?:_KEY|_TOKEN|_SECRET|PASSWORD|PASSWD))=("[^"]*"|'[^']*'|[^\s'"`;&|)]+)/gi;

/** A value: quoted, or up to a space, quote or shell operator. */
const VALUE = String.raw`("[^"]*"|'[^']*'|[^\s'"\x60;&|)]+)`;

/** `--api-key=value` inside one string. */
const SECRET_FLAG_EQ = new RegExp(String.raw`(^|[\s('"\x60])(${FLAG_NAME})=${VALUE}`, 'gi');

/** `--api-key value` inside one string (a shell script, a joined command line); not when the value is a long option. */
const SECRET_FLAG_SP = new RegExp(String.raw`(^|[\s('"\x60])(${FLAG_NAME})(\s+)(?!--[a-z])${VALUE}`, 'gi');

/** `Authorization: Bearer X` (curl -H, wget --header). */
const AUTH_HEADER = /\b(authorization:\s*(?:bearer|basic|token)\s+)([^\s'"]+)/gi;

/** The password of a URL: scheme://user:PASSWORD@host. A user name alone is kept. */
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:/@'"]*):([^\s/@'"]+)@/gi;

/** Keys with a well-known shape, wherever they stand: Anthropic/OpenAI, GitHub, Slack, AWS, GitLab. */
const KNOWN_KEYS = /\b(?:sk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|xox[abprs]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{16}|glpat-[A-Za-z0-9_-]{20,})/g;

/** One string with every secret-shaped value replaced by REDACTED. */
export function redactText(s: string): string {
  return s
    .replace(URL_PASSWORD, (_m, head: string) => `${head}:${REDACTED}@`)
    .replace(SECRET_ASSIGN, (_m, pre: string, name: string) => `${pre}${name}=${REDACTED}`)
    .replace(SECRET_FLAG_EQ, (_m, pre: string, flag: string) => `${pre}${flag}=${REDACTED}`)
    .replace(SECRET_FLAG_SP, (_m, pre: string, flag: string, sep: string) => `${pre}${flag}${sep}${REDACTED}`)
    .replace(AUTH_HEADER, (_m, head: string) => `${head}${REDACTED}`)
    .replace(KNOWN_KEYS, REDACTED);
}

/**
 * A command line with its secrets replaced by REDACTED: the value after a secret option
 * (`--token X`, unless X is itself a long option), `--token=X`, `*_KEY=X`, URL passwords, and
 * keys of a well-known shape. Everything else is kept word for word.
 */
export function redactArgv(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    out.push(redactText(a));
    const next = argv[i + 1];
    if (SECRET_FLAG.test(a) && next !== undefined && !/^--[a-z]/i.test(next)) {
      out.push(REDACTED);
      i++;
    }
  }
  return out;
}

/** Did redaction replace something in this (stored) command? */
export function isRedacted(argv: readonly string[]): boolean {
  return argv.some((a) => a.includes(REDACTED));
}

/** A command line (argv) for people: redacted, joined by spaces, escaped, cut at `max`. */
export function showArgv(argv: readonly string[], max?: number): string {
  return printable(redactArgv(argv).join(' '), max);
}

/** A command line already joined into one string (as /proc's cmdline is read): redacted, escaped, cut. */
export function showCommand(cmdline: string, max?: number): string {
  return printable(redactText(cmdline), max);
}

/**
 * A word a person can paste into a shell as one argument: kept as it is when it holds only
 * safe characters, otherwise single-quoted. For remedies that name paths and names
 * (`mv '/tmp/my state/state.db' …`); printable() still escapes it when shown.
 */
export function shellWord(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
