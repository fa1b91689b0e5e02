/**
 * The slot bell: a file in the state folder whose time stamp changes when a slot may have
 * freed (a run ended, a waiter left the queue). Waiters that could take the next slot watch
 * it (inotify on Linux, FSEvents/kqueue on macOS) and ask at once instead of waiting out
 * their poll; they still poll, more slowly, for what rings no bell (a process killed -9 is
 * noticed by the next reconcile) and for file systems where watching does not work.
 * Detached runs ring it from their /bin/sh supervisor (`touch`), see launch.ts.
 */
import { closeSync, constants, type FSWatcher, lutimesSync, openSync, watch } from 'node:fs';
import { join } from 'node:path';
import type { State } from './state.js';

export const BELL_FILE = 'slots.bell';

export const bellPath = (state: State): string => join(state.paths.dir, BELL_FILE);

/**
 * Change the bell's time stamp. No bell means nobody listens (listeners create it): no ring.
 * lutimes: a bell planted as a symlink gets its own time stamp changed, never its target's.
 */
function touch(path: string): void {
  try {
    const now = new Date();
    lutimesSync(path, now, now);
  } catch {
    /* missing, or not ours to touch: a hint only, waiters poll anyway */
  }
}

/** Ring once the current write commits, so a woken waiter sees what changed. */
export function ringAfterCommit(state: State): void {
  state.afterCommit(() => touch(bellPath(state)));
}

/** Waits for the bell or a timeout, whichever comes first. */
export class BellListener {
  private watcher: FSWatcher | undefined;
  private wake: (() => void) | undefined;

  constructor(path: string) {
    // create it if missing without changing it: a new listener must not wake the others
    try {
      // never through a link: a planted bell makes this waiter poll instead of watching
      closeSync(openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND | constants.O_NOFOLLOW, 0o600));
    } catch {
      this.watcher = undefined;
      return;
    }
    try {
      // not persistent: a waiter's own timer keeps it alive, the watch never does
      this.watcher = watch(path, { persistent: false }, () => this.wake?.());
      this.watcher.on('error', () => this.close());
    } catch {
      this.watcher = undefined; // no watching here: plain polling
    }
  }

  /** Resolves after `ms`, or earlier when the bell rings (if watching works here). */
  wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      if (this.watcher) this.wake = done;
    });
  }

  /** End the current wait early: another source of news (a log that grew) wakes the waiter too. */
  poke(): void {
    this.wake?.();
  }

  /** Is the file watched? Where watching fails, waiters keep the fast poll instead. */
  get watching(): boolean {
    return this.watcher !== undefined;
  }

  close(): void {
    this.wake?.();
    this.watcher?.close();
    this.watcher = undefined;
  }
}
