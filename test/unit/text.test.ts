import { describe, expect, it } from 'vitest';
import { isRedacted, printable, redactArgv, REDACTED, redactText, shellWord, showArgv, showCommand } from '../../src/core/text.js';

describe('printable', () => {
  it('shows control characters escaped, in one line', () => {
    const hostile = 'claude \u001b]0;PWNED\u0007\u001b[2J\nFORGED\tx\ry';
    expect(printable(hostile)).toBe('claude \\x1b]0;PWNED\\x07\\x1b[2J\\nFORGED\\tx\\ry');
    expect(printable('a\u0000b\u007fc')).toBe('a\\x00b\\x7fc');
  });

  it('escapes C1 controls, bidi overrides and isolates, line separators and lone surrogates', () => {
    expect(printable('x\u009b2Jy\u0085')).toBe('x\\x9b2Jy\\x85'); // CSI and NEL as single code points
    expect(printable('evil\u202egpj.exe')).toBe('evil\\u{202e}gpj.exe');
    expect(printable('\u2066a\u2069\u2028\u2029')).toBe('\\u{2066}a\\u{2069}\\u{2028}\\u{2029}');
    expect(printable('lone \ud800 surrogate')).toBe('lone \\u{d800} surrogate');
  });

  it('leaves ordinary text alone, non-ASCII and emoji included, and escaping twice changes nothing', () => {
    for (const s of ['plain', 'café ünïcode', 'emoji 🚀 ok', 'C:\\path\\x1b literal', '']) expect(printable(s)).toBe(s);
    const once = printable('a\u001b[31mb\nc');
    expect(printable(once)).toBe(once);
  });

  it('cuts long text to max characters with an ellipsis, never inside an escape or a surrogate pair', () => {
    expect(printable('abcdefghij', 5)).toBe('abcd…');
    expect(printable('abcde', 5)).toBe('abcde');
    expect(printable('abcdef', 1)).toBe('…');
    expect(printable('ab\u001bcdef', 6)).toBe('ab…'); // \x1b (4 wide) does not fit in the 3 left
    expect(printable('ab\u001bcdef', 7)).toBe('ab\\x1b…');
    expect(printable('🚀🚀🚀🚀', 3)).toBe('🚀🚀…');
    expect([...printable('x'.repeat(500), 60)].length).toBe(60);
  });
});

describe('redaction', () => {
  const cases: Array<[string[], string[]]> = [
    [
      ['claude', '--api-key', 'sk-ant-api03-XYZ'],
      ['claude', '--api-key', REDACTED],
    ],
    [
      ['gh', '--token=ghp_abc'],
      ['gh', `--token=${REDACTED}`],
    ],
    [
      ['env', 'OPENAI_API_KEY=sk-123', 'claude'],
      ['env', `OPENAI_API_KEY=${REDACTED}`, 'claude'],
    ],
    [
      ['psql', '--password', 'hunter2'],
      ['psql', '--password', REDACTED],
    ],
    [
      ['tool', '--db-password=hunter2', '--github-token', 'x1', '--client-secret', 's'],
      ['tool', `--db-password=${REDACTED}`, '--github-token', REDACTED, '--client-secret', REDACTED],
    ],
    [
      ['migrate', 'postgres://u:pw@h/db'],
      ['migrate', `postgres://u:${REDACTED}@h/db`],
    ],
    [
      ['git', 'clone', 'https://user:p%40ss@github.com/o/r'],
      ['git', 'clone', `https://user:${REDACTED}@github.com/o/r`],
    ],
    [
      ['x', 'GITHUB_TOKEN=a', 'AWS_SECRET=b', 'PGPASSWORD=c', 'db_password=d'],
      ['x', `GITHUB_TOKEN=${REDACTED}`, `AWS_SECRET=${REDACTED}`, `PGPASSWORD=${REDACTED}`, `db_password=${REDACTED}`],
    ],
    [
      ['sh', '-c', 'ANTHROPIC_API_KEY=abc claude --token "t t" -p hi'],
      ['sh', '-c', `ANTHROPIC_API_KEY=${REDACTED} claude --token ${REDACTED} -p hi`],
    ],
    [
      ['claude', '-p', 'use sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123'],
      ['claude', '-p', `use ${REDACTED}`],
    ],
    [
      ['curl', '-H', 'Authorization: Bearer abc.def'],
      ['curl', '-H', `Authorization: Bearer ${REDACTED}`],
    ],
  ];
  it.each(cases)('%j', (argv, want) => {
    expect(redactArgv(argv)).toEqual(want);
    expect(isRedacted(redactArgv(argv))).toBe(true);
  });

  it('leaves counts, names, paths and a URL user name alone', () => {
    const argv = [
      'claude',
      '--tokens',
      '5',
      '--max-tokens=4096',
      '--key-file',
      '/etc/k.pem',
      '--token-file',
      'tok.txt',
      '--key',
      'name',
      'ssh://git@github.com/o/r',
      'MONKEY=1',
      'task-abcdefghijklmnopqrstuvwxyz',
      '-p',
      'hello',
    ];
    expect(redactArgv(argv)).toEqual(argv);
    expect(isRedacted(argv)).toBe(false);
  });

  it('does not swallow the next option after a secret flag with no value', () => {
    expect(redactArgv(['x', '--token', '--verbose'])).toEqual(['x', '--token', '--verbose']);
    expect(redactText('x --token --verbose')).toBe('x --token --verbose');
  });

  it('is idempotent: a stored, redacted command redacts to itself', () => {
    const once = redactArgv(['claude', '--api-key', 'sk-x', 'API_KEY=y', 'https://a:b@h']);
    expect(redactArgv(once)).toEqual(once);
  });

  it('showArgv and showCommand redact, then escape, then cut', () => {
    expect(showArgv(['claude\u001b[2J', '--api-key', 'sk-secret123'])).toBe(`claude\\x1b[2J --api-key ${REDACTED}`);
    expect(showCommand('claude --api-key sk-secret123\nFORGED')).toBe(`claude --api-key ${REDACTED}\\nFORGED`);
    expect(showCommand('claude --password=hunter2 and more', 20)).toBe('claude --password=<…');
  });
});

describe('shellWord', () => {
  it('keeps plain words, single-quotes the rest so a remedy pastes as one argument', () => {
    expect(shellWord('/var/lib/agentctl/state.db')).toBe('/var/lib/agentctl/state.db');
    expect(shellWord('/tmp/my state/x;rm -rf ~')).toBe("'/tmp/my state/x;rm -rf ~'");
    expect(shellWord("it's")).toBe("'it'\\''s'");
    expect(shellWord('')).toBe("''");
  });
});
