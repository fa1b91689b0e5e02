import { describe, expect, it } from 'vitest';
import { decideColor, loadChalk, makeUi, stripAnsi } from '../../src/cli/output.js';
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
