// Messages read from Redis that this process cannot use (undecodable, or sealed under a key it lacks).
import { InvalidToken } from '../fernet';
import type { LayerLogger } from '../layer';

/**
 * Counts them and logs at the 1st, 2nd, 4th, 8th... so a misconfigured or hostile publisher cannot
 * flood the log; the message is dropped and nothing else happens.
 */
export class RefusedMessages {
  /** Messages refused so far. */
  count = 0;

  constructor(
    private readonly backend: string,
    private readonly logger: LayerLogger | undefined,
  ) {}

  refused(from: string, error: unknown): void {
    const count = ++this.count;
    if ((count & (count - 1)) !== 0) return;
    const message = (error as Error)?.message ?? String(error);
    if (error instanceof InvalidToken) {
      this.logger?.warn({ backend: this.backend, channel: from, count, reason: error.reason, error: message }, 'dropped encrypted layer message that no key opens');
    } else {
      this.logger?.warn({ backend: this.backend, channel: from, count, error: message }, 'dropped undecodable layer message');
    }
  }
}
