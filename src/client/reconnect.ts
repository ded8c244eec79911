// When and whether the client reconnects: exponential backoff with full jitter, and which closes end it.

/** How the client retries; every field optional, defaults below. */
export interface ReconnectOptions {
  /** Upper bound, in ms, of the delay before the first retry of an outage. Default 500. */
  initialDelay?: number;
  /** Cap, in ms, of that bound as it doubles with each failed attempt. Default 10_000. */
  maxDelay?: number;
  /**
   * Connection attempts per outage (the first attempt counts; an open socket starts a new outage when
   * it drops). When that many fail in a row, the client closes for good (`by: 'retries'`).
   * Default Infinity: retry forever.
   */
  maxAttempts?: number;
  /**
   * Whether a close from the server should be retried. Default `isRetryable` below; the app may
   * widen or narrow it (say, retry 4001 after refreshing a token).
   */
  retryable?: (code: number, reason: string) => boolean;
  /** A number in [0, 1), for the jitter. Default Math.random (tests pass their own). */
  random?: () => number;
}

export const RECONNECT_DEFAULTS = {
  initialDelay: 500,
  maxDelay: 10_000,
  maxAttempts: Infinity,
} as const;

/**
 * The delay before the next attempt after `failures` failed ones in this outage: uniform in
 * [0, min(maxDelay, initialDelay * 2^failures)) ("full jitter"), so the clients of a server that
 * restarts do not all come back in the same instant, and the average wait still doubles.
 */
export function backoffDelay(failures: number, initialDelay: number, maxDelay: number, random: () => number): number {
  const bound = Math.min(maxDelay, initialDelay * 2 ** Math.min(failures, 52));
  return Math.floor(random() * bound);
}

/**
 * The default rule: a close the server chose on purpose is final; anything that looks like a drop,
 * a restart or a passing overload is retried.
 *
 * Final (the client goes to `closed`, `by: 'server'`):
 * - 1000: the server ended the session normally (a consumer's `close()`); coming back would undo that.
 * - 1003, 1008: this client sent what the server refuses (binary frames; policy: rate limit, auth,
 *   a message that took too long). Reconnecting would repeat it; the app decides.
 * - 4000-4999: the application's own refusals (channelkit's demos use 4003 for a bad name or no login).
 *
 * Retried: 1001 (server shutdown), 1005 (no code), 1006 (dropped, or a refused handshake: a browser
 * sees HTTP 403/404/503 only as 1006), 1007 and 1009 (one bad frame of ours: the next socket is fresh),
 * 1011 (server error), 1012, 1013 (overloaded, too slow a reader), 1014, 1015, and 3000-3999.
 */
export function isRetryable(code: number): boolean {
  if (code === 1000 || code === 1003 || code === 1008) return false;
  return !(code >= 4000 && code <= 4999);
}
