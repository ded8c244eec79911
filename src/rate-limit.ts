// Token buckets for per-connection frame and byte rates.

/** Refills continuously at `rate` tokens per second up to `burst`; taking past empty is refused. */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    now = performance.now(),
  ) {
    this.tokens = burst;
    this.last = now;
  }

  /** Takes `count` tokens and returns true, or returns false (and takes none) when there are too few. */
  take(count: number, now = performance.now()): boolean {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.rate) / 1000);
    this.last = now;
    if (this.tokens < count) return false;
    this.tokens -= count;
    return true;
  }
}

export interface RateLimit {
  /** Frames per second a client may send, sustained. Default 100. */
  framesPerSecond: number;
  /** Frames a client may send at once above the sustained rate. Default 200. */
  frameBurst: number;
  /** Bytes per second a client may send, sustained. Default 1 MiB. */
  bytesPerSecond: number;
  /** Bytes a client may send at once above the sustained rate. Default 4 MiB. */
  byteBurst: number;
}

export const RATE_LIMIT_DEFAULTS: RateLimit = {
  framesPerSecond: 100,
  frameBurst: 200,
  bytesPerSecond: 1024 * 1024,
  byteBurst: 4 * 1024 * 1024,
};

/** Both buckets of one connection. */
export class ConnectionRateLimiter {
  private readonly frames: TokenBucket;
  private readonly bytes: TokenBucket;

  constructor(limit: RateLimit) {
    this.frames = new TokenBucket(limit.framesPerSecond, limit.frameBurst);
    this.bytes = new TokenBucket(limit.bytesPerSecond, limit.byteBurst);
  }

  /** False when this frame goes over either rate. */
  allow(size: number): boolean {
    const now = performance.now();
    return this.frames.take(1, now) && this.bytes.take(size, now);
  }
}
