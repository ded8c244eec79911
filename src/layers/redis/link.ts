// What every Redis layer of channelkit shares: how a connection retries, how its URL is shown, how skips are reported.
import type { LayerLogger } from '../layer';

/**
 * node-redis `reconnectStrategy`: exponential from 50 ms, capped at 2 s, forever (losing Redis must
 * never end the process), with jitter so that many processes do not reconnect in step.
 */
export function reconnectDelay(retries: number): number {
  return Math.min(50 * 2 ** Math.min(retries, 6), 2000) + Math.floor(Math.random() * 100);
}

/** A URL fit for logs and health: no user name or password. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    return parsed.toString().replace(/\/$/, '');
  } catch {
    return '<invalid redis url>';
  }
}

/**
 * Counts messages a full channel could not take where no sender can be told ChannelFull: sent by
 * another process (a PUBLISH, a message popped from Redis) or skipped by a group send. Never
 * silent: each is counted, and logged at the 1st, 2nd, 4th, 8th... so a stuck reader cannot flood
 * the log.
 */
export class FullChannelSkips {
  /** Messages skipped so far. */
  count = 0;

  constructor(
    private readonly backend: string,
    private readonly logger: LayerLogger | undefined,
  ) {}

  /** `n` messages for `target` (a channel, or a group's keys in Redis) were not delivered. */
  skipped(target: string, n = 1): void {
    const before = this.count;
    this.count += n;
    if (before !== 0 && Math.clz32(before) === Math.clz32(this.count)) return;
    this.logger?.warn(
      { backend: this.backend, channel: target, skipped: this.count },
      'channel layer: channel full, a message was skipped (its reader is not keeping up; raise capacity)',
    );
  }
}
