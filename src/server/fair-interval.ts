import { performance } from 'node:perf_hooks'; // not the global, which is a getter in Node

/**
 * A periodic check that judges clients (the heartbeat, the message time limit) only on what they could
 * have done. A timer fires in the loop's timers phase, before the poll phase reads what arrived while
 * the loop was busy: a pong or a final fragment sitting unread in the kernel would look missing. So the
 * check runs from setImmediate, after that read; and a tick that comes late (the loop stalled past a
 * period: a GC pause, a sync burst, a machine that cannot keep up) is told so, and convicts nobody.
 */
export class FairInterval {
  private readonly timer: NodeJS.Timeout;
  private immediate: NodeJS.Immediate | null = null;
  private last = performance.now();

  /** `check(onTime)`: onTime is false when the period just ended was stretched by a stalled loop. */
  constructor(
    private readonly periodMs: number,
    private readonly check: (onTime: boolean) => void,
  ) {
    this.timer = setInterval(() => this.tick(), periodMs);
  }

  private tick(): void {
    const now = performance.now();
    // Half a period of slack: timers drift a little on a busy loop without anything being unfair.
    const onTime = now - this.last <= this.periodMs * 1.5;
    this.last = now;
    this.immediate ??= setImmediate(() => {
      this.immediate = null;
      this.check(onTime);
    });
  }

  stop(): void {
    clearInterval(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.immediate = null;
  }
}
