import { describe, expect, it } from 'vitest';
import { decideColor, loadChalk, makeUi, outputWidth, stripAnsi, visibleWidth } from '../../src/cli/output.js';
import { printable } from '../../src/core/text.js';

describe('colour is decided per stream', () => {
  it.each([
    // flag, env, isTTY, expected
    [true, {}, false, true], // --color wins over a pipe
    [false, {}, true, false], // --no-color wins over a TTY
    [true, { NO_COLOR: '1' }, false, true], // the flag beats NO_COLOR
    [undefined, { NO_COLOR: '1' }, true, false],
    [undefined, { NO_COLOR: '' }, true, true], // empty NO_COLOR does not count (no-color.org)
    [undefined, { FORCE_COLOR: '1' }, false, true],
    [undefined, { FORCE_COLOR: '0' }, true, false],
    [undefined, { NO_COLOR: '1', FORCE_COLOR: '1' }, true, false],
    [undefined, { TERM: 'dumb' }, true, false],
    [undefined, {}, true, true],
    [undefined, {}, false, false],
  ] as const)('flag %j env %j tty %j -> %j', (flag, env, isTTY, want) => {
    expect(decideColor({ flag, env, isTTY })).toBe(want);
  });
});

describe('ui', () => {
  it('without colour, tables and styles have no escape codes', () => {
    const ui = makeUi(false);
    const out =
      ui.table(
        ['a', 'b'],
        [
          [1, ui.c.red('x')],
          [ui.c.bold.green('y'), 'z'],
        ],
      ) + ui.pairs([[ui.c.dim('k'), 'v']]);
    expect(out).not.toMatch(/\u001b/);
    expect(out).toContain('│ a │ b │');
    expect(ui.color).toBe(false);
  });

  it('with colour, styles and borders are painted', async () => {
    const ui = makeUi(true, await loadChalk());
    expect(ui.color).toBe(true);
    const t = ui.table(['a'], [[ui.c.red('x')]]);
    expect(t).toMatch(/\u001b\[/);
    expect(stripAnsi(t)).toContain('│ x │');
  });

  it('colour requested without chalk falls back to plain', () => {
    expect(makeUi(true).color).toBe(false);
  });
});

describe('ui escapes text it did not paint (core/text.ts)', () => {
  const hostile = 'claude \u001b]0;PWNED\u0007\u001b[2J\nFORGED';
  const escaped = 'claude \\x1b]0;PWNED\\x07\\x1b[2J\\nFORGED';

  it('without colour: cells, pairs, styles and whole views are escaped; views keep their own newlines', () => {
    const ui = makeUi(false);
    const out = ui.safe(`${ui.table(['cmd'], [[hostile], [ui.c.red(hostile)]])}\n${ui.pairs([['k', hostile]])}`);
    expect(out).not.toMatch(/[\u0000-\u0009\u000b-\u001f]/);
    expect(out.split('\n').some((l) => l.startsWith('FORGED'))).toBe(false);
    expect(out.split(escaped).length - 1).toBe(3);
    // a whole view keeps its newlines, so one built from raw text still needs printable()
    expect(ui.safe(hostile)).toBe('claude \\x1b]0;PWNED\\x07\\x1b[2J\nFORGED');
  });

  it('with colour: its own styles and borders stay painted, foreign escape codes do not', async () => {
    const ui = makeUi(true, await loadChalk());
    const t = ui.table(
      ['state', 'cmd'],
      [
        [ui.c.red('open'), hostile],
        [ui.c.bold.green(hostile), `7${ui.c.red(' (gone)')}`],
      ],
    );
    const out = ui.safe(`${t}\n${ui.c.yellow('head')} ${printable(hostile)}`);
    expect(out).toContain('\u001b[31mopen\u001b[39m');
    expect(out).toContain('\u001b[33mhead\u001b[39m');
    expect(out).toContain(`7\u001b[31m (gone)\u001b[39m`); // painted pieces inside a built cell
    expect(out).not.toMatch(/\u0007|\u001b\]|\u001b\[2J/);
    expect(
      stripAnsi(out)
        .split('\n')
        .some((l) => l.startsWith('FORGED')),
    ).toBe(false);
    expect(out.split(escaped).length - 1).toBe(3);
  });
});

describe('views fit the width (the issue "The operator\'s day", item 5)', () => {
  const reason = 'the breaker opened after three startup errors in a row: the command exits at once because its config file /srv/fleet/workers/assigner.toml is missing';
  const head = ['pid', 'kind', 'why', 'cmd'];
  const rows = [
    [123456, 'breaker.open', reason, 'python3 /srv/fleet/workers/assigner.py --config /srv/fleet/workers/assigner.toml'],
    [7, 'run.failed', 'short', 'true'],
  ] as const;
  const fit = { why: 'wrap', cmd: 'cut' } as const;
  const lines = (s: string) => stripAnsi(s).split('\n');
  const longest = (s: string) => Math.max(...lines(s).map(visibleWidth));
  /** the text of one column, its lines joined */
  const column = (out: string, i: number) =>
    lines(out)
      .filter((l) => l.includes('│'))
      .map((l) => l.split('│')[i + 1]!.trim())
      .join(' ');

  it("the width: the terminal's columns, 80 when unknown, no limit under --wide", () => {
    expect(outputWidth({ wide: false, isTTY: true, columns: 60 })).toBe(60);
    expect(outputWidth({ wide: false, isTTY: false, columns: undefined })).toBe(80);
    expect(outputWidth({ wide: false, isTTY: true, columns: 0 })).toBe(80); // a TTY that does not say
    expect(outputWidth({ wide: true, isTTY: true, columns: 60 })).toBe(Infinity);
  });

  it.each([80, 40])('at %i columns no line is longer; the free-text columns give way, the fixed ones stay whole', (width) => {
    const out = makeUi(false, undefined, width).table(head, rows, fit);
    expect(longest(out)).toBeLessThanOrEqual(width);
    for (const fixed of ['123456', 'breaker.open', 'run.failed']) expect(out).toContain(` ${fixed} `);
    expect(column(out, 3).replace(/ +/g, ' ').trim()).toMatch(/^cmd pyth[^…]*… true$/); // cut: one line a row
    expect(out).not.toContain(reason); // the reason is wrapped: all its words, over several lines
    expect(column(out, 2).replace(/\s+/g, '')).toContain(reason.replace(/\s+/g, '')); // a word longer than the column is broken
  });

  it('names (cut-last) give way only after the free text; drop columns leave when nothing else fits', () => {
    const ui = makeUi(false, undefined, 40);
    const named = ui.table(['name', 'why'], [['a-rather-long-worker-name', reason]], { name: 'cut-last', why: 'wrap' });
    expect(named).toContain(' a-rather-long-worker-name ');
    expect(longest(named)).toBeLessThanOrEqual(40);
    const many = [['r0mwrf0p246fy01', 'worker', 'default', 3, 'running', 123456, 'python3 worker.py']];
    const ps = makeUi(false, undefined, 60).table(['run', 'name', 'group', 'prio', 'state', 'pid', 'command'], many, { prio: 'drop', group: 'drop', name: 'cut-last', command: 'cut' });
    expect(longest(ps)).toBeLessThanOrEqual(60);
    expect(ps).not.toContain('prio');
    expect(ps).not.toContain('group');
    expect(ps).toContain(' r0mwrf0p246fy01 ');
    expect(ps).toContain(' 123456 ');
    expect(makeUi(false, undefined, Infinity).table(['run', 'prio'], [['r', 3]], { prio: 'drop' })).toContain('prio');
  });

  it('colour codes take no width', async () => {
    const ui = makeUi(true, await loadChalk(), 40);
    const out = ui.table(head, [[ui.c.red('999999'), ui.c.bold('breaker.open'), ui.c.yellow(reason), 'x'], ...rows], fit);
    expect(out).toMatch(/\u001b\[/);
    expect(longest(out)).toBeLessThanOrEqual(40);
    expect(Math.max(...out.split('\n').map((l) => l.length))).toBeGreaterThan(40); // with the codes counted it would not fit
    expect(stripAnsi(out)).toContain(' 999999 ');
  });

  it('a table that fits is left as it is, and under --wide (Infinity) nothing is cut or wrapped', () => {
    const small = [[1, 'k', 'why', 'cmd']];
    expect(makeUi(false, undefined, 80).table(head, small, fit)).toBe(makeUi(false).table(head, small));
    const wide = makeUi(false, undefined, Infinity).table(head, rows, fit);
    expect(wide).toContain(reason);
    expect(wide).toContain(rows[0][3]);
    expect(wide).not.toContain('…');
    expect(wide.split('\n')).toHaveLength(rows.length + 3);
  });

  it('pairs and free-text lines wrap at the width, indented under their start', () => {
    const ui = makeUi(false, undefined, 40);
    const pairs = ui.pairs([
      ['memory', '3.6% used, 22.7G of 23.5G available'],
      ['pressure', 'cpu 94.20, memory 0.00/0.00, io 0.90/0.00 (some/full, % of last 10s)'],
    ]);
    expect(longest(pairs)).toBeLessThanOrEqual(40);
    expect(
      pairs
        .split('\n')
        .slice(1)
        .every((l) => /^(?:[a-z]+ +|          )\S/.test(l)),
    ).toBe(true);
    const why = ui.wrap(`why: ${reason}`, 5);
    expect(longest(why)).toBeLessThanOrEqual(40);
    expect(
      why
        .split('\n')
        .slice(1)
        .every((l) => l.startsWith('     ') && l[5] !== ' '),
    ).toBe(true);
    expect(why.replace(/\n +/g, ' ')).toBe(`why: ${reason}`);
    expect(makeUi(false).wrap(`why: ${reason}`, 5)).toBe(`why: ${reason}`);
    // a line's own indent stays; a word too long for any line starts beside the text before it
    const fixed = ui.wrap(`  fixed: ${'x'.repeat(70)}`, 9);
    expect(fixed.startsWith('  fixed: xxx')).toBe(true);
    expect(longest(fixed)).toBeLessThanOrEqual(40);
  });

  it('wrapping keeps escaping: a hostile reason is shown escaped, whatever the width', () => {
    const ui = makeUi(false, undefined, 30);
    const out = ui.safe(ui.wrap('why: claude \u001b]0;PWNED\u0007 then a long tail of words here'));
    expect(out).not.toMatch(/\u001b|\u0007/);
    expect(out).toContain('\\x1b]0;PWNED\\x07');
  });
});
