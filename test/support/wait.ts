// Waiting in tests: polling for conditions that have no event (Redis accepted a resubscription, a node came
// back), and for fan-out deliveries.
import type { ChannelLayer } from '../../src/layers/layer';

/** Resolves once `condition` holds; throws naming `what` after `ms`. */
export async function until(condition: () => boolean | Promise<boolean>, ms = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
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
