// Per-connection limits on client frames and bytes, as token buckets.
import { performance } from 'node:perf_hooks'; // not the global, which is a getter in Node

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

/**
 * Two token buckets (frames and bytes) of one connection, refilled continuously at their rates up to
 * their bursts. Plain numbers in one object: every connection has one.
 */
export class ConnectionRateLimiter {
  private frames: number;
  private bytes: number;
  private last: number;

  constructor(
    private readonly limit: RateLimit,
    now = performance.now(),
  ) {
    this.frames = limit.frameBurst;
    this.bytes = limit.byteBurst;
    this.last = now;
  }

  /** Takes one frame of `size` bytes; false (taking nothing) when either bucket has too little. */
  allow(size: number, now = performance.now()): boolean {
    const elapsed = (now - this.last) / 1000;
    this.last = now;
    const { limit } = this;
    this.frames = Math.min(limit.frameBurst, this.frames + elapsed * limit.framesPerSecond);
    this.bytes = Math.min(limit.byteBurst, this.bytes + elapsed * limit.bytesPerSecond);
    if (this.frames < 1 || this.bytes < size) return false;
    this.frames -= 1;
    this.bytes -= size;
    return true;
  }
}
