// Sums the metrics of several processes (a cluster's workers) into one exposition, as /metrics serves it.
import { AggregatorRegistry } from 'prom-client';
import type { MetricsJson } from './server-metrics';

/**
 * One exposition from each process's `Server.metricsJson()`: counters, histograms and most gauges are
 * summed per label set; `channelkit_layer_up` and `channelkit_layer_link_up` take the minimum (1 only
 * when every process is connected); prom-client's own defaults follow their declared rule (start time:
 * the earliest...). A cluster primary serves this as `/metrics` through the `exposition` metrics option.
 */
export function aggregateMetrics(perProcess: MetricsJson[]): Promise<string> {
  return AggregatorRegistry.aggregate(perProcess).metrics();
}
