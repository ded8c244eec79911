// What every Redis connection of channelkit shares: how it retries and how its URL is shown.

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
