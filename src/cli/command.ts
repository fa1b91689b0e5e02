import type { OptionValues } from '../core/declaration.js';
import type { Ctx, Outcome, Ui } from '../core/ctx.js';

/** A command module: parse options, call core, return data. Rendering is separate. */
export interface CommandModule<T = unknown> {
  run(opts: OptionValues, args: readonly string[], ctx: Ctx): Promise<Outcome<T>>;
  render(data: T, ui: Ui): string;
}

/** Print a result the way the globals ask: one JSON document, or the human view. */
export function emit<T>(ctx: Ctx, data: T, render: (data: T, ui: Ui) => string, alwaysPrint = false): void {
  if (ctx.globals.json) {
    ctx.stdout.write(`${JSON.stringify(data)}\n`);
    return;
  }
  if (ctx.globals.quiet && !alwaysPrint) return;
  const text = ctx.ui.safe(render(data, ctx.ui)); // no control character reaches a terminal but the view's own newlines
  if (text !== '') ctx.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}
