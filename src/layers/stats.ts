// What a channel layer counts as it works: plain integers, bumped where the work happens and read by /metrics (src/metrics/).

/**
 * Upper bounds of the latency buckets, in milliseconds: a Redis round trip on one machine is well under
 * a millisecond, one across a network a few, a struggling Redis hundreds.
 */
export const LATENCY_BOUNDS_MS: readonly number[] = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500];

/**
 * A fixed-bucket latency histogram: `observe` is a short scan and one increment, with no label lookup and
 * no allocation; /metrics turns the counts into Prometheus' cumulative buckets when it is scraped.
 */
export class LatencyHistogram {
  /** Observations per bucket (not cumulative); the last one is past every bound (+Inf). */
  readonly counts = new Float64Array(LATENCY_BOUNDS_MS.length + 1);
  /** Sum of every observation, in milliseconds. */
  sumMs = 0;
  count = 0;

  observe(ms: number): void {
    const bounds = LATENCY_BOUNDS_MS;
    let i = 0;
    while (i < bounds.length && ms > bounds[i]) i++;
    this.counts[i]++;
    this.sumMs += ms;
    this.count++;
  }
}

/** The connections of a layer to its backend (a Redis layer's LinkMonitor), as /metrics shows them. */
export interface LinkStates {
  /** Every link the layer opened, with whether it is up now and how often it came back after its first 'ready'. */
  forEachLink(visit: (link: string, up: boolean, reconnects: number) => void): void;
}

/**
 * One per layer (its LocalChannels holds it, `ChannelLayer.stats` exposes it). Counts only: no timer,
 * no log, nothing to close.
 *
 * History joins `since` a position are counted by `countJoin`; presence members are read from the
 * layer's presence state (`presence`) when scraped.
 */
export class LayerStats {
  /** `groupSend` calls made through this layer in this process. */
  groupSends = 0;
  /** `send` calls made through this layer in this process. */
  sends = 0;
  /** Layer messages handed to a local consumer's mailbox, a waiting receiver or a channel's queue. */
  delivered = 0;
  /** Layer messages a consumer's full mailbox refused (the channel counts as full; see `skippedFull`). */
  mailboxDrops = 0;
  /** Time from `groupSend` to the backend's answer (Redis layers; the in-memory layer has no round trip). */
  readonly groupSendLatency = new LatencyHistogram();
  /** The same for `send` to a channel of another process. */
  readonly sendLatency = new LatencyHistogram();
  /** Set by Redis layers: their links' states. Null for layers with no backend. */
  links: LinkStates | null = null;
  /** Joins `since` a position whose gap was replayed (history hook). */
  historyRecovered = 0;
  /** Joins `since` a position the history no longer covered (history hook). */
  historyNotRecovered = 0;
  /** The layer's presence state once it has one: its count of this process's members. */
  presence: { readonly localMembers: number } | null = null;

  /** This process's presence members over all groups. */
  get presenceMembers(): number {
    return this.presence?.localMembers ?? 0;
  }

  /** Counts a history join: one `since` a position is recovered or not; a `last` is neither. */
  countJoin(since: boolean, recovered: boolean): void {
    if (!since) return;
    if (recovered) this.historyRecovered++;
    else this.historyNotRecovered++;
  }
}
