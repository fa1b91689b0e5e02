/**
 * The terminal while the live view runs on it, as htop and watch leave it: the alternate screen
 * with the cursor hidden, frames redrawn in place, the keyboard in raw mode so `q` (or Ctrl-C,
 * which raw mode delivers as the byte 0x03) leaves; and on leaving, whatever the way out (q,
 * a signal, an exception, process exit), the cursor shown, the alternate screen left and the
 * keyboard's mode restored.
 */

/** The terminal the view draws on (process.stdout when it is a TTY). */
export interface TermOut {
  write(s: string): unknown;
  readonly columns?: number;
  readonly rows?: number;
  on(event: 'resize', f: () => void): unknown;
  removeListener(event: 'resize', f: () => void): unknown;
}

/** The keyboard (process.stdin); raw mode only where it is a TTY. */
export interface TermIn {
  readonly isTTY?: boolean;
  readonly isRaw?: boolean;
  setRawMode?(raw: boolean): unknown;
  on(event: 'data', f: (d: Buffer | string) => void): unknown;
  removeListener(event: 'data', f: (d: Buffer | string) => void): unknown;
  resume(): unknown;
  pause(): unknown;
}

const CSI = '\u001b[';
/** alternate screen on, cursor hidden */
export const ENTER = `${CSI}?1049h${CSI}?25l`;
/** cursor shown, alternate screen off (the shell's screen comes back as it was) */
export const LEAVE = `${CSI}?25h${CSI}?1049l`;

/** Keys that leave: q, Q, and Ctrl-C as raw mode delivers it. */
export function isQuitKey(d: Buffer | string): boolean {
  const s = typeof d === 'string' ? d : d.toString('latin1');
  return s === 'q' || s === 'Q' || s.includes('\u0003');
}

/**
 * The bytes that draw `lines` over the previous frame: home, and each line cleared before it is
 * written (clearing after a line that fills the width would erase its last column on some
 * terminals); below a frame shorter than the screen, the rest is cleared. No newline after the
 * last line, so a frame as tall as the screen never scrolls it.
 */
export function drawText(lines: readonly string[], height: number): string {
  const body = lines.map((l) => `${CSI}2K${l}`).join('\r\n');
  return `${CSI}H${body}${lines.length < height ? `\r\n${CSI}J` : ''}`;
}

export class Screen {
  private opened = false;
  private wasRaw = false;
  private readonly onData = (d: Buffer | string) => {
    if (isQuitKey(d)) this.onQuit();
  };
  private readonly onExit = () => this.close();

  constructor(
    private readonly out: TermOut,
    private readonly input: TermIn | undefined,
    private readonly onQuit: () => void,
    private readonly onResize: () => void,
  ) {}

  /** Columns and lines of the terminal now (it may have been resized). */
  size(): { width: number; height: number } {
    return { width: this.out.columns && this.out.columns > 0 ? this.out.columns : 80, height: this.out.rows && this.out.rows > 0 ? this.out.rows : 24 };
  }

  open(): void {
    if (this.opened) return;
    this.opened = true;
    // restored on every way out: close() in the caller's finally, and here on process exit
    process.on('exit', this.onExit);
    this.out.on('resize', this.onResize);
    this.out.write(ENTER);
    const input = this.input;
    if (input?.isTTY && input.setRawMode) {
      this.wasRaw = Boolean(input.isRaw);
      input.setRawMode(true);
      input.on('data', this.onData);
      input.resume();
    }
  }

  draw(lines: readonly string[]): void {
    this.out.write(drawText(lines, this.size().height));
  }

  /** Leave the terminal as it was; safe to call twice. */
  close(): void {
    if (!this.opened) return;
    this.opened = false;
    process.removeListener('exit', this.onExit);
    this.out.removeListener('resize', this.onResize);
    const input = this.input;
    if (input?.isTTY && input.setRawMode) {
      input.removeListener('data', this.onData);
      input.setRawMode(this.wasRaw);
      input.pause();
    }
    this.out.write(LEAVE);
  }
}
