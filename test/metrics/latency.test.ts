// LatencyHistogram (plain counts on the hot path) as Prometheus' cumulative histogram.
import { Registry } from 'prom-client';
import { LatencyHistogram } from '../../src/layers/stats';
import { LatencyMetric } from '../../src/metrics/latency-metric';
import { samples } from '../support/metrics';

test('observations land in the first bucket whose bound holds them (bounds inclusive), rendered cumulative in seconds', async () => {
  const histogram = new LatencyHistogram();
  for (const ms of [0.05, 0.1, 0.3, 7, 3000]) histogram.observe(ms);
  const registry = new Registry();
  registry.registerMetric(new LatencyMetric('t_seconds', 'test', 'operation', () => [['group_send', histogram]]));
  const found = samples(await registry.metrics());
  expect(found.get('t_seconds_bucket{operation="group_send",le="0.0001"}')).toBe(2);
  expect(found.get('t_seconds_bucket{operation="group_send",le="0.00025"}')).toBe(2);
  expect(found.get('t_seconds_bucket{operation="group_send",le="0.0005"}')).toBe(3);
  expect(found.get('t_seconds_bucket{operation="group_send",le="0.005"}')).toBe(3);
  expect(found.get('t_seconds_bucket{operation="group_send",le="0.01"}')).toBe(4);
  expect(found.get('t_seconds_bucket{operation="group_send",le="2.5"}')).toBe(4);
  expect(found.get('t_seconds_bucket{operation="group_send",le="+Inf"}')).toBe(5);
  expect(found.get('t_seconds_count{operation="group_send"}')).toBe(5);
  expect(found.get('t_seconds_sum{operation="group_send"}')).toBeCloseTo(3.00745, 6);
  // The JSON form (what cluster workers hand their primary) carries the same samples.
  const [json] = await registry.getMetricsAsJSON();
  expect(json.type).toBe('histogram');
  expect(json.values).toHaveLength(15 + 2);
});
