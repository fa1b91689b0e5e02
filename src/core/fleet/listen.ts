/**
 * A waiter's ear on the fleet: one connection that LISTENs for released leases of its group,
 * so `spawn --wait` asks again as soon as another host gives a slot back. A poll is the
 * floor: a lease that expires (a host gone silent) sends no notification.
 */
import type { Client } from 'pg';
import type { FleetSettings } from '../config/types.js';
import { hasRoom } from './lease.js';
import { closeQuietly, connect } from './pg.js';
import { RELEASE_CHANNEL } from './schema.js';

export class FleetListener {
  private client: Client | undefined;
  private wake: (() => void) | undefined;
  private heard = false;

  private constructor(private readonly group: string) {}

  /** Listening, or a listener that only sleeps when PostgreSQL cannot be reached. */
  static async open(fleet: FleetSettings, group: string): Promise<FleetListener> {
    const l = new FleetListener(group);
    try {
      const client = await connect(fleet);
      client.on('notification', (n) => {
        if (n.channel !== RELEASE_CHANNEL || n.payload !== group) return;
        l.heard = true;
        l.wake?.();
      });
      client.on('end', () => (l.client = undefined));
      await client.query(`LISTEN ${RELEASE_CHANNEL}`);
      l.client = client;
    } catch {
      /* plain polling */
    }
    return l;
  }

  /** Resolves after `ms`, or at once when a lease of the group was released since the last wait. */
  wait(ms: number): Promise<void> {
    if (this.heard) {
      this.heard = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = undefined;
        this.heard = false;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }

  /** Is the group under its cap? Unknown (true: ask and see) when not connected. */
  async room(cap: number): Promise<boolean> {
    if (!this.client) return true;
    try {
      return await hasRoom(this.client, this.group, cap);
    } catch {
      return true;
    }
  }

  close(): void {
    if (this.client) closeQuietly(this.client);
    this.client = undefined;
  }
}
