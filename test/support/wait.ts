// Waiting in tests and the bench: polling for conditions that have no event (Redis accepted a resubscription, a
// node came back, a counter in another process), and for fan-out deliveries. Every poll has a deadline.
import type { ChannelLayer } from '../../src/layers/layer';

/**
 * Re-checks `condition` every `intervalMs` until it holds (true) or `ms` have passed (false). An interval of 0
 * re-checks on every event-loop turn, for states that may last less than a timer tick.
 */
export async function poll(condition: () => boolean | Promise<boolean>, ms = 10_000, intervalMs = 20): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => (intervalMs > 0 ? setTimeout(resolve, intervalMs) : setImmediate(resolve)));
  }
  return true;
}

/** Resolves once `condition` holds; throws naming `what` after `ms`. */
export async function until(condition: () => boolean | Promise<boolean>, ms = 10_000, what = 'condition', intervalMs = 20): Promise<void> {
  if (!(await poll(condition, ms, intervalMs))) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

/** Resolves as `promise` does, or throws naming `what` if it has not settled after `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Listens on every channel of `layer`; resolves once each has received one message. */
export function oneMessageEach(layer: ChannelLayer, channels: string[]): Promise<void> {
  let delivered = 0;
  return new Promise<void>((resolve) => {
    for (const channel of channels) {
      void layer.listen(channel, {
        offer() {
          if (++delivered === channels.length) resolve();
          return true;
        },
      });
    }
  });
}

/** Blocks this process's event loop for `ms`, as a GC pause or a synchronous burst would. */
export function stallLoop(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end);
}
