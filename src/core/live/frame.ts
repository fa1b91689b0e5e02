/**
 * One frame of the live view as lines of text, fitted to a width and a height: a pure function
 * of the snapshot (gather.ts), so it is tested without a terminal. Text from the state (names,
 * reasons) is escaped here; colour is applied by the painter the caller passes, after fitting,
 * so escape codes never count against the width.
 */
import { printable } from '../text.js';
import { formatBytes, formatDuration } from '../units.js';
import type { LiveRun, LiveSnapshot } from './gather.js';

export type Style = 'bold' | 'dim' | 'red' | 'yellow' | 'green' | 'magenta';
/** Paints text in a style; PLAIN leaves it as it is (no colour, piped, NO_COLOR). */
export type Painter = (style: Style, text: string) => string;
export const PLAIN: Painter = (_s, t) => t;

export interface FrameOptions {
  /** columns; Infinity for no limit (--wide when piped) */
  readonly width: number;
  /** lines; Infinity when piped (every row is printed) */
  readonly height: number;
  /** a terminal the view redraws in: the header says how to leave */
  readonly interactive: boolean;
  readonly paint?: Painter;
  /** the first line's title; `agentctl top` when not given */
  readonly title?: string;
}

/** A piece of a line and its style. */
interface Seg {
  readonly text: string;
  readonly style?: Style | undefined;
}

/** Columns a string takes: code points (as the Ui counts them). */
const cols = (s: string): number => {
  let n = 0;
  for (const _ of s) n++;
  return n;
};

/** Cut `s` to `w` columns, ending with `…` when cut. */
export function cutTo(s: string, w: number): string {
  if (cols(s) <= w) return s;
  if (w <= 0) return '';
  return `${[...s].slice(0, w - 1).join('')}…`;
}

/** A line of segments cut to `width` (the last visible one ends with `…`), then painted. */
function fit(segs: readonly Seg[], width: number, paint: Painter): string {
  const total = segs.reduce((a, s) => a + cols(s.text), 0);
  let room = total > width ? width - 1 : Infinity;
  let out = '';
  for (const s of segs) {
    if (room <= 0) break;
    const text = [...s.text].slice(0, room).join('');
    room -= cols(text);
    out += s.style && text ? paint(s.style, text) : text;
  }
  return total > width && width > 0 ? `${out}…` : out;
}

const LEVEL_STYLE: readonly Style[] = ['green', 'yellow', 'magenta', 'red'];
const LABEL = 10; // the header's labels, padded

function header(s: LiveSnapshot, o: FrameOptions): Seg[][] {
  const t = s.throttle;
  const every = formatDuration(s.interval_ms);
  const title: Seg[] = [
    { text: o.title ?? 'agentctl top', style: 'bold' },
    { text: `  ${s.timestamp.slice(11, 19)}  every ${every}` },
    ...(o.interactive ? [{ text: '  q quits', style: 'dim' as const }] : []),
  ];
  const level: Seg[] = t.disabled
    ? [{ text: 'throttle'.padEnd(LABEL) }, { text: 'disabled (AGENTCTL_DISABLE_THROTTLE): level 0', style: 'yellow' }]
    : [
        { text: 'throttle'.padEnd(LABEL) },
        { text: `level ${t.level} ${printable(t.name)}`, style: LEVEL_STYLE[t.level] ?? 'red' },
        { text: `  mem ${t.memory_used_pct.toFixed(1)}%  cpu ${t.cpu_used_pct.toFixed(1)}%  load/core ${t.load_per_core.toFixed(2)}` },
      ];
  const why: Seg[] = [{ text: 'why'.padEnd(LABEL) }, { text: t.reasons.length ? t.reasons.map((r) => printable(r)).join('; ') : 'every reading is below its threshold' }];
  const h = s.host;
  const cap = h.max_agents === null ? `${h.agents}, no cap` : `${h.agents} of ${h.max_agents}`;
  const b = s.breakers;
  const open = [...b.open.map((n) => printable(n)), ...b.half_open.map((n) => `${printable(n)} (half-open)`), ...(b.host_open ? ['host'] : [])];
  const agents: Seg[] = [
    { text: 'agents'.padEnd(LABEL) },
    { text: cap, style: h.max_agents !== null && h.agents >= h.max_agents ? 'yellow' : undefined },
    { text: ` (${h.managed} started by agentctl, ${h.unmanaged} other${h.unmanaged === 1 ? '' : 's'})  queue ${s.queue.waiting}  breakers ` },
    open.length ? { text: open.join(', '), style: 'red' } : { text: 'none open' },
  ];
  return [title, level, why, agents];
}

interface Col {
  readonly head: string;
  readonly right?: boolean;
  /** may be cut down to this many columns */
  readonly min?: number;
  readonly cell: (r: LiveRun) => string;
  readonly style?: (r: LiveRun) => Style | undefined;
}

const COLUMNS: readonly Col[] = [
  { head: 'RUN', cell: (r) => printable(r.run_id) },
  { head: 'NAME', min: 6, cell: (r) => printable(r.name) },
  { head: 'STATE', cell: (r) => printable(r.state), style: (r) => (r.state === 'running' ? undefined : 'yellow') },
  { head: 'PID', right: true, cell: (r) => (r.pid === null ? '-' : String(r.pid)) },
  { head: 'CPU%', right: true, cell: (r) => (r.cpu_pct === null ? '-' : r.cpu_pct.toFixed(1)) },
  { head: 'RSS', right: true, cell: (r) => (r.rss_bytes === null ? '-' : formatBytes(r.rss_bytes)) },
  { head: 'UPTIME', right: true, cell: (r) => formatDuration(r.uptime_ms) },
  { head: '↺', right: true, cell: (r) => String(r.restarts) },
  { head: 'PORTS', min: 5, cell: (r) => (r.ports.length ? r.ports.join(',') : '-') },
];

/** Columns that leave, in this order, when the table cannot fit with NAME readable. */
const DROP_ORDER = ['RUN', 'UPTIME', 'PORTS', 'RSS', '↺'];
/** NAME keeps this many columns before a column is dropped for it. */
const READABLE_NAME = 12;
const GAP = '  ';

/** The table's columns and their widths for `width`: natural widths, then cut, then dropped. */
export function layout(runs: readonly LiveRun[], width: number): Array<{ col: Col; width: number }> {
  let cols_ = [...COLUMNS];
  const natural = (c: Col) => Math.max(cols(c.head), ...runs.map((r) => cols(c.cell(r))));
  const total = (ws: readonly number[]) => ws.reduce((a, w) => a + w, 0) + GAP.length * (ws.length - 1);
  for (const drop of [...DROP_ORDER, undefined]) {
    const ws = cols_.map(natural);
    // the free-text columns give way, widest first, down to their floor
    const floor = (c: Col, i: number) => (c.min === undefined ? ws[i]! : Math.min(ws[i]!, Math.max(c.min, cols(c.head))));
    let excess = total(ws) - width;
    while (excess > 0) {
      let k = -1;
      cols_.forEach((c, i) => {
        if (ws[i]! > floor(c, i) && (k < 0 || ws[i]! > ws[k]!)) k = i;
      });
      if (k < 0) break;
      ws[k]!--;
      excess--;
    }
    const name = cols_.findIndex((c) => c.head === 'NAME');
    const nameOk = name < 0 || ws[name]! >= Math.min(READABLE_NAME, natural(cols_[name]!));
    if ((excess <= 0 && nameOk) || drop === undefined) return cols_.map((col, i) => ({ col, width: ws[i]! }));
    cols_ = cols_.filter((c) => c.head !== drop);
  }
  return []; // not reached: the last pass returns
}

function tableLines(runs: readonly LiveRun[], width: number, paint: Painter): string[] {
  const lay = layout(runs, width);
  const pad = (text: string, w: number, right: boolean | undefined) => {
    const t = cutTo(text, w);
    const space = ' '.repeat(Math.max(0, w - cols(t)));
    return right ? space + t : t + space;
  };
  const line = (cells: readonly Seg[]) =>
    fit(
      cells.flatMap((c, i) => (i ? [{ text: GAP }, c] : [c])),
      width,
      paint,
    ).trimEnd();
  const head = line(lay.map(({ col, width: w }) => ({ text: pad(col.head, w, col.right), style: 'bold' })));
  return [head, ...runs.map((r) => line(lay.map(({ col, width: w }) => ({ text: pad(col.cell(r), w, col.right), style: col.style?.(r) }))))];
}

/**
 * The frame: four header lines (title and time, throttle level, why, agents/queue/breakers), a
 * blank line, the table of live runs. Every line fits `width`; with a finite `height` the rows
 * that do not fit give way to a last line `… N more`.
 */
export function buildFrame(s: LiveSnapshot, o: FrameOptions): string[] {
  const paint = o.paint ?? PLAIN;
  const width = Math.max(1, o.width);
  const lines = header(s, o).map((segs) => fit(segs, width, paint));
  lines.push('');
  if (s.runs.length === 0) lines.push(fit([{ text: 'no live runs', style: 'dim' }], width, paint));
  else {
    const [head, ...rows] = tableLines(s.runs, width, paint);
    lines.push(head!);
    const room = o.height - lines.length;
    if (rows.length <= room) lines.push(...rows);
    else if (room >= 2) lines.push(...rows.slice(0, room - 1), fit([{ text: `… ${rows.length - room + 1} more`, style: 'dim' }], width, paint));
    else lines.push(...rows);
  }
  return Number.isFinite(o.height) ? lines.slice(0, Math.max(1, o.height)) : lines;
}
