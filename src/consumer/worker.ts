// Background workers: consumers bound to named channels ('thumbnails.generate'), fed by layer.receive().
import type { Runtime } from '../application';
import type { Consumer } from './consumer';
import { shouldLog } from './dispatch';
import { LayerClosed } from '../layers/layer';
import { validateChannelName } from '../layers/layer';

/** A worker consumer class: `class Thumbnails extends Consumer { thumbnailsGenerate(message) {...} }`. */
export type WorkerConsumerClass = new (runtime: Runtime) => Consumer;

/** Maps channel names to the consumer classes that handle their messages. */
export class ChannelNameRouter {
  readonly routes: ReadonlyMap<string, WorkerConsumerClass>;

  constructor(routes: Record<string, WorkerConsumerClass>) {
    for (const channel of Object.keys(routes)) validateChannelName(channel);
    this.routes = new Map(Object.entries(routes));
  }
}

export interface WorkerOptions {
  router: ChannelNameRouter;
  /** Channels to consume; each must be routed. Default: every routed channel. */
  channels?: string[];
  /** Milliseconds to wait before receiving again after a layer error (Redis down). Default 1000. */
  retryDelay?: number;
}

/**
 * One consumer instance per channel, handling its messages one at a time, in order. A handler that
 * throws is logged and the worker goes on with the next message; a worker never dies of one message.
 */
export class Worker {
  private stopped = false;
  private stop!: () => void;
  private readonly stopping = new Promise<'stop'>((resolve) => (this.stop = () => resolve('stop')));
  private loops: Promise<void>[] = [];

  constructor(
    private readonly runtime: Runtime,
    private readonly options: WorkerOptions,
  ) {
    for (const channel of this.channels) {
      if (!options.router.routes.has(channel)) throw new Error(`no consumer routed for channel ${channel}`);
    }
  }

  get channels(): string[] {
    return this.options.channels ?? [...this.options.router.routes.keys()];
  }

  start(): void {
    this.loops = this.channels.map((channel) => this.consume(channel));
    this.runtime.logger.info({ channels: this.channels }, 'worker started');
  }

  /** Stops receiving, waits for the handlers in progress. A receive already pending may take one more message. */
  async close(): Promise<void> {
    this.stopped = true;
    this.stop();
    await Promise.all(this.loops);
  }

  private async consume(channel: string): Promise<void> {
    const consumer = new (this.options.router.routes.get(channel)!)(this.runtime);
    consumer.channelName = channel;
    const { logger, channelLayer } = this.runtime;
    while (!this.stopped) {
      let message;
      try {
        message = await Promise.race([channelLayer.receive(channel), this.stopping]);
      } catch (error) {
        if (error instanceof LayerClosed) return;
        logger.warn({ err: error, channel }, 'worker could not receive; retrying');
        await Promise.race([delay(this.options.retryDelay ?? 1000), this.stopping]);
        continue;
      }
      if (message === 'stop') return;
      // Channel and type only: a job's body may hold anything, of any size.
      if (logger.isLevelEnabled('debug')) logger.debug({ channel, type: typeLabel(message.type) }, 'worker handling job');
      try {
        await consumer.dispatch(message);
      } catch (error) {
        // Unknown types are logged once per type and minute, as for socket consumers.
        if (shouldLog(error)) logger.error({ err: error, channel, type: typeLabel(message.type) }, 'worker handler failed');
      }
    }
  }
}

/** A message's type fit for a log line: a sender controls it, so it is cut short. */
function typeLabel(type: unknown): string | undefined {
  if (typeof type !== 'string') return undefined;
  return type.length > 100 ? `${type.slice(0, 100)}...` : type;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
