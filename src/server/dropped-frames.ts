// Frames the server chose not to send (over the outbound cap, or to a slow reader under 'drop'): counted, logged per window.
import { performance } from 'node:perf_hooks'; // not the global, which is a getter in Node
import type { Logger } from '../logger';

/** Why a frame was not sent, with the remedy its log line names. */
const REMEDIES = {
  oversize: 'frame over maxOutboundFrame not sent; raise maxOutboundFrame or send less',
  slowReader: "frame not sent to a slow reader (slowReaderPolicy 'drop'); raise maxBufferedBytes or send less",
} as const;

export type DropReason = keyof typeof REMEDIES;

/** How often each reason may log: a group send to a thousand members must not write a thousand lines. */
const WINDOW_MS = 10_000;

/**
 * Counts the frames the server dropped, by reason, for the life of the server (`total`), and logs the
 * first drop of each window with how many were dropped since the last line. A drop is never silent.
 */
export class DroppedFrames {
  readonly total: Record<DropReason, number> = { oversize: 0, slowReader: 0 };
  private readonly sinceLog: Record<DropReason, number> = { oversize: 0, slowReader: 0 };
  private readonly loggedAt: Record<DropReason, number> = { oversize: -Infinity, slowReader: -Infinity };

  constructor(
    private readonly logger: Logger,
    private readonly fields: Record<DropReason, Record<string, number>>,
  ) {}

  /** `frames` frames of `bytes` bytes in all were dropped. */
  record(reason: DropReason, bytes: number, path: string, frames = 1): void {
    this.total[reason] += frames;
    this.sinceLog[reason] += frames;
    const now = performance.now();
    if (now - this.loggedAt[reason] < WINDOW_MS) return;
    this.loggedAt[reason] = now;
    this.logger.warn({ bytes, ...this.fields[reason], dropped: this.sinceLog[reason], path }, REMEDIES[reason]);
    this.sinceLog[reason] = 0;
  }
}
