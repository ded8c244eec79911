// A Prometheus histogram read from LatencyHistogram counts at scrape time, so observing costs the layer no label lookup.
import { Histogram } from 'prom-client';
import { LATENCY_BOUNDS_MS, type LatencyHistogram } from '../layers/stats';

type Values = Awaited<ReturnType<Histogram<string>['get']>>['values'];

/** The bucket bounds in seconds, Prometheus' unit, as `le` label values. */
const LE = LATENCY_BOUNDS_MS.map((ms) => String(ms / 1000));

/**
 * prom-client's Histogram, whose samples come from plain `LatencyHistogram`s (one per value of its one
 * label) instead of its own `observe`: the registry formats and aggregates it like any other histogram.
 */
export class LatencyMetric<L extends string> extends Histogram<L> {
  constructor(
    private readonly metricName: string,
    private readonly helpText: string,
    private readonly label: L,
    private readonly sources: () => ReadonlyArray<readonly [string, LatencyHistogram]>,
  ) {
    super({ name: metricName, help: helpText, labelNames: [label], buckets: LATENCY_BOUNDS_MS.map((ms) => ms / 1000), registers: [] });
  }

  override async get(): ReturnType<Histogram<L>['get']> {
    // Not super.get(): prom-client's get() calls getForPromString(), which is this get() below.
    const name = this.metricName;
    const values: Values = [];
    const bucket = `${name}_bucket`;
    for (const [labelValue, histogram] of this.sources()) {
      let cumulative = 0;
      for (let i = 0; i < LE.length; i++) {
        cumulative += histogram.counts[i];
        values.push({ metricName: bucket, labels: { [this.label]: labelValue, le: LE[i] }, value: cumulative });
      }
      values.push({ metricName: bucket, labels: { [this.label]: labelValue, le: '+Inf' }, value: histogram.count });
      values.push({ metricName: `${name}_sum`, labels: { [this.label]: labelValue }, value: histogram.sumMs / 1000 });
      values.push({ metricName: `${name}_count`, labels: { [this.label]: labelValue }, value: histogram.count });
    }
    const metric = { name, help: this.helpText, type: 'histogram', aggregator: 'sum', values };
    return metric as unknown as Awaited<ReturnType<Histogram<L>['get']>>;
  }

  /** The registry renders text from this when it exists (prom-client's own reads its internal map). */
  getForPromString(): ReturnType<Histogram<L>['get']> {
    return this.get();
  }
}
