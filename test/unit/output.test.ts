import { describe, expect, it } from 'vitest';
import { decideColor, loadChalk, makeUi, stripAnsi } from '../../src/core/output.js';

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
    const out = ui.table(['a', 'b'], [[1, ui.c.red('x')], [ui.c.bold.green('y'), 'z']]) + ui.pairs([[ui.c.dim('k'), 'v']]);
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
