/**
 * The live view (`agentctl top`, `agentctl ps --watch`): a frame every interval until q,
 * Ctrl-C, SIGINT, SIGTERM or SIGHUP. On a terminal it redraws in place (screen.ts); piped, it
 * prints one plain snapshot per interval; with --json, one JSON document per line. Loaded only
 * by those two commands.
 */
import { BellListener, bellPath } from '../bell.js';
import type { Ctx } from '../ctx.js';
import { buildFrame, type Painter, PLAIN } from './frame.js';
import { LiveGatherer, type LiveSnapshot } from './gather.js';
import { Screen } from './screen.js';

export interface LiveOptions {
  readonly intervalMs: number;
  /** the command events and reconciles are recorded under */
  readonly command: 'ps' | 'top';
  /** the header's title */
  readonly title: string;
}

/** After the slot bell rings, the next frame comes this soon (sooner only if the interval is shorter). */
const BELL_FRAME_MS = 250;

/** Shows a frame the way the output asks: drawn on the screen, a plain snapshot, or a JSON line. */
function presenter(ctx: Ctx, o: LiveOptions, screen: Screen | undefined): (snap: LiveSnapshot) => void {
  const paint: Painter = ctx.ui.color ? (style, text) => ctx.ui.c[style](text) : PLAIN;
  let frames = 0;
  return (snap) => {
    if (screen) {
      screen.draw(buildFrame(snap, { ...screen.size(), interactive: true, paint, title: o.title }));
    } else if (ctx.globals.json) {
      ctx.stdout.write(`${JSON.stringify(snap)}\n`);
    } else {
      // one snapshot per interval, a blank line between them; the first line carries the time
      const text = buildFrame(snap, { width: ctx.ui.width, height: Infinity, interactive: false, paint, title: o.title }).join('\n');
      ctx.stdout.write(`${frames ? '\n' : ''}${ctx.ui.safe(text)}\n`);
    }
    frames++;
  };
}

export async function runLive(ctx: Ctx, o: LiveOptions): Promise<void> {
  const loaded = ctx.config();
  const state = ctx.state();
  const gatherer = new LiveGatherer({
    now: ctx.now,
    sleep: ctx.sleep,
    env: ctx.env,
    sampler: ctx.sampler,
    listProcesses: ctx.listProcesses,
    config: loaded,
    state,
    command: o.command,
    intervalMs: o.intervalMs,
  });
  const bell = new BellListener(bellPath(state));
  let stop = false;
  let resized = false;
  let ours = false; // a wake of our own (key, resize, signal), not the bell
  const wake = () => {
    ours = true;
    bell.poke();
  };
  const quit = () => {
    stop = true;
    wake();
  };
  const screenMode = !ctx.globals.json && Boolean(ctx.stdout.isTTY) && ctx.stdout === process.stdout;
  const screen = screenMode
    ? new Screen(process.stdout, process.stdin.isTTY ? process.stdin : undefined, quit, () => {
        resized = true;
        wake();
      })
    : undefined;
  const show = presenter(ctx, o, screen);
  // a reader that went away (`agentctl top | head`) ends the view too
  const gone = () => (ctx.stdout as { destroyed?: boolean }).destroyed === true;
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const s of signals) process.on(s, quit);
  try {
    screen?.open();
    let snap = await gatherer.next();
    show(snap);
    let last = ctx.now();
    let due = last + o.intervalMs;
    while (!stop && !gone()) {
      ours = false;
      await bell.wait(Math.max(0, due - ctx.now()));
      if (stop) break;
      if (resized) {
        resized = false;
        show(snap); // the same facts, fitted to the new size at once
      }
      if (ctx.now() < due) {
        // woken early by no one of ours: the bell rang (a run ended): reconcile, and show it soon
        if (!ours) {
          gatherer.reconcileSoon();
          due = Math.min(due, last + Math.min(o.intervalMs, BELL_FRAME_MS));
        }
        continue;
      }
      snap = await gatherer.next();
      if (stop) break;
      show(snap);
      last = ctx.now();
      due = last + o.intervalMs;
    }
  } finally {
    for (const s of signals) process.removeListener(s, quit);
    bell.close();
    screen?.close();
  }
}
