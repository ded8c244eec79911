// One server's metrics in Prometheus' terms: prom-client metrics whose collect() reads the server's and its layer's plain counts.
import { Counter, Gauge, Registry } from 'prom-client';
import type { ChannelLayer } from '../layers/layer';
import type { LayerStats } from '../layers/stats';
import type { DroppedFrames } from '../server/dropped-frames';
import type { ServerStats } from '../server/stats';
import { LatencyMetric } from './latency-metric';
import { METRIC_PREFIX, processRegistry } from './process-metrics';

/** What the metrics read from a server (a `Server` is one). */
export interface MetricsSource {
  readonly stats: ServerStats;
  readonly droppedFrames: DroppedFrames;
  readonly channelLayer: ChannelLayer;
  readonly connectionCount: number;
}

/** This process's metrics as prom-client's JSON: what a cluster primary sums over its workers (see aggregate.ts). */
export type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

/**
 * Nothing is made until the first scrape: a server that is never scraped pays only its integer counts.
 * Every value is read at scrape time from `ServerStats` and `LayerStats`; the hot path never touches
 * prom-client.
 */
export class ServerMetrics {
  private registry: Registry | null = null;

  constructor(private readonly source: MetricsSource) {}

  /** Prometheus' text format, version 0.0.4. */
  readonly contentType = Registry.PROMETHEUS_CONTENT_TYPE;

  /** The exposition: this process's default metrics and this server's channelkit_* ones. */
  text(): Promise<string> {
    return this.build().metrics();
  }

  /** The same as JSON, for summing over cluster workers with `aggregateMetrics`. */
  json(): Promise<MetricsJson> {
    return this.build().getMetricsAsJSON();
  }

  private build(): Registry {
    this.registry ??= Registry.merge([processRegistry(), serverRegistry(this.source)]);
    return this.registry;
  }
}

function serverRegistry(source: MetricsSource): Registry {
  const registry = new Registry();
  const registers = [registry];
  const layer = (): LayerStats | undefined => source.channelLayer.stats;
  const counter = (name: string, help: string, read: () => number) =>
    new Counter({
      name: METRIC_PREFIX + name,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(read());
      },
    });

  new Gauge({
    name: `${METRIC_PREFIX}connections`,
    help: 'Open WebSocket connections (accepted and not yet ended).',
    registers,
    collect() {
      this.set(source.connectionCount);
    },
  });
  new Counter({
    name: `${METRIC_PREFIX}handshakes_total`,
    help: 'WebSocket handshakes answered, by HTTP status: 101 accepted; 403 refused by the app, 404 no route, 429 per-address limit, 503 full or shutting down or layer down, 400 invalid, 500 failed.',
    labelNames: ['status'],
    registers,
    collect() {
      this.reset();
      for (const [status, count] of source.stats.handshakes) this.inc({ status: String(status) }, count);
    },
  });
  new Counter({
    name: `${METRIC_PREFIX}disconnects_total`,
    help: 'Accepted WebSocket connections that ended, by close code (1000 normal, 1001 going away, 1006 no close frame, 1008 policy, 1009 too big, 1011 consumer error, 1013 slow reader, 4000-4999 the app).',
    labelNames: ['code'],
    registers,
    collect() {
      this.reset();
      for (const [code, count] of source.stats.disconnects) this.inc({ code: String(code) }, count);
    },
  });
  counter('frames_received_total', 'Data frames (messages) received from clients.', () => source.stats.framesReceived);
  counter('frames_sent_total', 'Data frames written to clients.', () => source.stats.framesSent);
  new Counter({
    name: `${METRIC_PREFIX}frames_dropped_total`,
    help: 'Frames not sent to a client, by reason: oversize (over maxOutboundFrame), slow_reader (slowReaderPolicy drop).',
    labelNames: ['reason'],
    registers,
    collect() {
      this.reset();
      this.inc({ reason: 'oversize' }, source.droppedFrames.total.oversize);
      this.inc({ reason: 'slow_reader' }, source.droppedFrames.total.slowReader);
    },
  });
  counter('slow_reader_closes_total', 'Connections closed with 1013 because the client read too slowly (maxBufferedBytes).', () => source.stats.slowReaderCloses);

  counter('layer_group_sends_total', 'Group sends made through the channel layer by this process.', () => layer()?.groupSends ?? 0);
  counter('layer_sends_total', 'Channel sends made through the channel layer by this process.', () => layer()?.sends ?? 0);
  counter('layer_messages_delivered_total', "Layer messages handed to a consumer's mailbox (or a channel queue) in this process.", () => layer()?.delivered ?? 0);
  counter('layer_mailbox_drops_total', "Layer messages refused by a consumer's full mailbox (mailboxCapacity).", () => layer()?.mailboxDrops ?? 0);
  counter('layer_skipped_full_total', 'Layer messages skipped because their channel was full where no sender could be told (group members, other processes).', () => source.channelLayer.skippedFull);
  new Gauge({
    name: `${METRIC_PREFIX}layer_up`,
    help: "1 while the channel layer reaches its backend (health 'up'), else 0.",
    registers,
    aggregator: 'min',
    collect() {
      this.set(source.channelLayer.health().state === 'up' ? 1 : 0);
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}layer_link_up`,
    help: 'Per connection of the channel layer to Redis (host and role): 1 connected, 0 not.',
    labelNames: ['link'],
    registers,
    aggregator: 'min',
    collect() {
      this.reset();
      layer()?.links?.forEachLink((link, up) => this.set({ link }, up ? 1 : 0));
    },
  });
  new Counter({
    name: `${METRIC_PREFIX}layer_link_reconnects_total`,
    help: 'Per connection of the channel layer to Redis: times it came back after being lost.',
    labelNames: ['link'],
    registers,
    collect() {
      this.reset();
      layer()?.links?.forEachLink((link, _up, reconnects) => this.inc({ link }, reconnects));
    },
  });
  registry.registerMetric(
    new LatencyMetric(
      `${METRIC_PREFIX}layer_send_seconds`,
      'Time from a group send (or a send to another process) to the backend acknowledging it, in seconds. Redis layers only.',
      'operation',
      () => {
        const stats = layer();
        return stats
          ? [
              ['group_send', stats.groupSendLatency],
              ['send', stats.sendLatency],
            ]
          : [];
      },
    ),
  );
  new Counter({
    name: `${METRIC_PREFIX}history_recoveries_total`,
    help: 'Joins since a stream position: recovered (the gap was replayed) or not_recovered (history no longer covered it).',
    labelNames: ['result'],
    registers,
    collect() {
      this.reset();
      this.inc({ result: 'recovered' }, layer()?.historyRecovered ?? 0);
      this.inc({ result: 'not_recovered' }, layer()?.historyNotRecovered ?? 0);
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}presence_members`,
    help: "This process's members of every group's presence.",
    registers,
    collect() {
      this.set(layer()?.presenceMembers ?? 0);
    },
  });
  return registry;
}
