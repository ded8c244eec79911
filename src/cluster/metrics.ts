// /metrics under `--workers N`: whichever worker is asked answers with the sum over every worker,
// gathered by the primary over IPC (each worker's own counts stay plain integers in that worker).
import type { Worker } from 'node:cluster';
import { aggregateMetrics } from '../metrics/aggregate';
import type { MetricsJson } from '../metrics/server-metrics';

/*
 * Messages carry `ckm` (never `ck`, the relay's key): a worker asks the primary for the sum (`ask`),
 * the primary asks every worker for its share (`share?`), each answers (`share`), and the primary
 * hands the exposition back (`sum`).
 */
type MetricsMessage =
  | { ckm: 'ask'; id: number }
  | { ckm: 'share?'; id: number }
  | { ckm: 'share'; id: number; json: MetricsJson | null }
  | { ckm: 'sum'; id: number; text: string; error?: string };

/** How long the primary waits for every worker's share before it sums those that came. */
const SHARE_TIMEOUT_MS = 2_000;

function isMetricsMessage(message: unknown): message is MetricsMessage {
  return typeof message === 'object' && message !== null && typeof (message as { ckm?: unknown }).ckm === 'string';
}

/**
 * In a worker: the `exposition` of its /metrics (the cluster's sum, through the primary), and the
 * answer to the primary's requests for this worker's share, read from `share()`.
 */
export function workerMetrics(share: () => Promise<MetricsJson>): { exposition: () => Promise<string>; close(): void } {
  let next = 0;
  const waiting = new Map<number, { resolve(text: string): void; reject(error: Error): void }>();
  const onMessage = (message: unknown): void => {
    if (!isMetricsMessage(message)) return;
    if (message.ckm === 'share?') {
      share().then(
        (json) => process.send?.({ ckm: 'share', id: message.id, json } satisfies MetricsMessage),
        () => process.send?.({ ckm: 'share', id: message.id, json: null } satisfies MetricsMessage),
      );
    } else if (message.ckm === 'sum') {
      const pending = waiting.get(message.id);
      waiting.delete(message.id);
      if (message.error !== undefined) pending?.reject(new Error(message.error));
      else pending?.resolve(message.text);
    }
  };
  process.on('message', onMessage);
  return {
    exposition: () =>
      new Promise<string>((resolve, reject) => {
        if (!process.connected) return reject(new Error('the cluster primary is gone'));
        const id = ++next;
        waiting.set(id, { resolve, reject });
        process.send!({ ckm: 'ask', id } satisfies MetricsMessage);
      }),
    close: () => process.off('message', onMessage),
  };
}

/** In the primary: answers a worker's `ask` with the sum of every connected worker's share. */
export class PrimaryMetrics {
  private next = 0;
  private readonly gathering = new Map<number, { shares: MetricsJson[]; left: Set<number>; done(): void }>();

  constructor(private readonly workers: () => Worker[]) {}

  /** Handles a worker's IPC message; false when it is not about metrics. */
  handle(from: Worker, message: unknown): boolean {
    if (!isMetricsMessage(message)) return false;
    if (message.ckm === 'ask') void this.sum(from, message.id);
    else if (message.ckm === 'share') {
      const round = this.gathering.get(message.id);
      if (round && round.left.delete(from.id)) {
        if (message.json) round.shares.push(message.json);
        if (round.left.size === 0) round.done();
      }
    }
    return true;
  }

  private async sum(asker: Worker, askId: number): Promise<void> {
    const id = ++this.next;
    const workers = this.workers().filter((worker) => worker.isConnected());
    const shares: MetricsJson[] = [];
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, SHARE_TIMEOUT_MS);
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      this.gathering.set(id, { shares, left: new Set(workers.map((worker) => worker.id)), done });
      if (workers.length === 0) done();
      for (const worker of workers) worker.send({ ckm: 'share?', id } satisfies MetricsMessage, undefined, swallow);
    });
    this.gathering.delete(id);
    let reply: MetricsMessage;
    try {
      reply = { ckm: 'sum', id: askId, text: await aggregateMetrics(shares) };
    } catch (error) {
      reply = { ckm: 'sum', id: askId, text: '', error: (error as Error).message };
    }
    if (asker.isConnected()) asker.send(reply, undefined, swallow);
  }
}

function swallow(): void {
  // A worker that died meanwhile: its share is missing from this sum, and its 'exit' is logged.
}
