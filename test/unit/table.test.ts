import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { visibleWidth } from '../../src/cli/output.js';
import { drawTable } from '../../src/cli/table.js';

// cli-table3 drew our tables until src/cli/table.ts took over; it stays a devDependency so
// that this test holds the two layouts together
type TableCtor = new (opts: Record<string, unknown>) => { push(...rows: unknown[]): void; toString(): string };
const requireHere = createRequire(import.meta.url);
const Table = requireHere('cli-table3') as TableCtor;
// cli-table3 colours its borders only when @colors/colors guesses the terminal can show them
// (TERM=dumb in CI says no); the comparison must not depend on where the suite runs
const colours = createRequire(requireHere.resolve('cli-table3'))('@colors/colors/safe') as { enable(): void };
colours.enable();

function theirs(head: string[], rows: string[][], grey: boolean): string {
  const t = new Table({ head, style: { head: [], border: grey ? ['grey'] : [] }, chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' } });
  t.push(...rows);
  return t.toString();
}
const grey = (s: string) => `\u001b[90m${s}\u001b[39m`;

const CASES: Array<[string, string[], string[][]]> = [
  ['no rows', ['NAME', 'PID'], []],
  ['one row', ['NAME', 'PID', 'STATUS'], [['claude-1', '4242', 'running']]],
  [
    'a cell wider than its header',
    ['A', 'BB'],
    [
      ['long cell', ''],
      ['x', 'y'],
    ],
  ],
  [
    'several lines in a cell',
    ['ENTRY', 'DETAIL'],
    [
      ['s1', 'requires s2, which is\nwaiting (backoff)'],
      ['s2', 'one line'],
    ],
  ],
  ['lines in two cells of a row', ['A', 'B', 'C'], [['1\n2\n3', 'x', 'p\nq']]],
  [
    'empty strings',
    ['A', 'B'],
    [
      ['', ''],
      ['', 'z'],
    ],
  ],
  [
    'coloured cells',
    ['\u001b[1mNAME\u001b[22m', 'STATUS'],
    [
      ['w', '\u001b[31mfailed\u001b[39m'],
      ['worker-two', '\u001b[32mrunning\u001b[39m'],
    ],
  ],
  [
    'twenty rows as up prints them',
    ['ENTRY', 'NAME', 'STATUS', 'DETAIL'],
    Array.from({ length: 20 }, (_, i) => [`s${i + 1}`, `s${i + 1}`, 'started', `run r0mwvg2h9smm7${i}, PID 2931${i} (not running)`]),
  ],
];

describe('drawTable', () => {
  for (const [what, head, rows] of CASES) {
    it(`draws ${what} as cli-table3 did`, () => {
      expect(drawTable(head, rows, visibleWidth)).toBe(theirs(head, rows, false));
    });
    it(`draws ${what} with grey borders as cli-table3 did`, () => {
      expect(drawTable(head, rows, visibleWidth, grey)).toBe(theirs(head, rows, true));
    });
  }

  it('pads by the width it is given, not by string length', () => {
    const out = drawTable(['N'], [['\u001b[31mred\u001b[39m']], visibleWidth).split('\n');
    expect(out[0]).toBe('┌─────┐');
    expect(out[2]).toBe('│ \u001b[31mred\u001b[39m │');
  });
});
