// A cluster worker's side: its channel layer (Redis as configured, else the relay through the primary).
import cluster from 'node:cluster';
import type { ChannelLayer } from '../layers/layer';
import { channelLayerFromEnv, layerChoiceFromEnv } from '../layers/from-env';
import { type RelayEndpoint, WorkersChannelLayer } from '../layers/workers';
import type { Logger } from '../logger';
import { type PrimaryBatch, isRelayMessage } from './messages';

/** This process's IPC channel to the primary, as the workers layer wants it. */
export function processEndpoint(): RelayEndpoint {
  return {
    get connected() {
      return process.connected === true;
    },
    send(batch) {
      // A write after the primary is gone would raise 'error' on process; the layer checks `connected` first.
      process.send?.(batch, undefined, {}, swallow);
    },
    subscribe(handler, disconnected) {
      const onMessage = (message: unknown) => {
        if (isRelayMessage(message)) handler(message as PrimaryBatch);
      };
      process.on('message', onMessage);
      process.once('disconnect', disconnected);
      return () => {
        process.off('message', onMessage);
        process.off('disconnect', disconnected);
      };
    },
  };
}

function swallow(): void {
  // The channel closed under a send: the message is lost (at most once), and the worker exits with it.
}

/**
 * In a worker: a Redis layer when one is configured (each worker its own connections; groups span
 * the workers over Redis as they span servers), else the workers layer, through the primary.
 */
export async function workerChannelLayer(env: NodeJS.ProcessEnv, logger: Logger): Promise<ChannelLayer> {
  if (layerChoiceFromEnv(env).kind !== 'memory') return channelLayerFromEnv(env, logger);
  logger.info('channel layer: workers, through the primary (set REDIS_URL to span machines)');
  return new WorkersChannelLayer({ endpoint: processEndpoint(), workerId: cluster.worker!.id });
}

/** The worker id for /healthz and logs: `cluster.worker.id`, or undefined when not a cluster worker. */
export function clusterWorkerId(): number | undefined {
  return cluster.isWorker ? cluster.worker?.id : undefined;
}
