/**
 * Drawing a table whose cells the Ui has already escaped, fitted and measured (output.ts):
 * box-drawing borders, one space either side of each cell, no rule between rows (compact, and
 * it greps as one line per row), a cell of several lines making its row as tall. The layout is
 * the one cli-table3 drew with our options (test/unit/table.test.ts holds the two together);
 * drawing it here spares every table-printing command cli-table3's load and its measuring each
 * cell again with string-width: 35-50 ms for a 20-row table on a cold start (node -e: require
 * 5-21 ms, first render 31-38 ms), more than `agentctl up` spends on its own work.
 */

/** Columns a string takes on a terminal: its code points, escape sequences left out. */
export type WidthOf = (s: string) => number;

/**
 * The table for `head` and `rows` (strings already fit to show); `border` paints a border
 * piece (grey when colour is on), `width` measures a cell line.
 */
export function drawTable(head: readonly string[], rows: readonly (readonly string[])[], width: WidthOf, border: (s: string) => string = (s) => s): string {
  const all = [head, ...rows].map((r) => head.map((_, i) => (r[i] ?? '').split('\n')));
  const widths = head.map((_, i) => Math.max(0, ...all.map((r) => Math.max(...r[i]!.map(width)))));
  const rule = (left: string, mid: string, right: string) => widths.map((w, i) => border(`${i === 0 ? left : mid}${'─'.repeat(w + 2)}${i === widths.length - 1 ? right : ''}`)).join('');
  const lines = [rule('┌', '┬', '┐')];
  for (const r of all) {
    const height = Math.max(...r.map((cell) => cell.length));
    for (let k = 0; k < height; k++) {
      const cells = r.map((cell, i) => {
        const text = cell[k] ?? '';
        return ` ${text}${' '.repeat(widths[i]! - width(text))} `;
      });
      lines.push(`${border('│')}${cells.join(border('│'))}${border('│')}`);
    }
  }
  lines.push(rule('└', '┴', '┘'));
  return lines.join('\n');
}
