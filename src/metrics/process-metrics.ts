// prom-client's default process and Node.js metrics, named channelkit_*, made once per process on first use.
import { Registry, collectDefaultMetrics } from 'prom-client';

/** Every metric channelkit serves starts with this (DESIGN.md's contract), prom-client's defaults too. */
export const METRIC_PREFIX = 'channelkit_';

/**
 * prom-client's `nodejs_active_{handles,requests,resources}_total` are gauges named like counters, which
 * `promtool check metrics` rejects; each is the sum over its per-type gauge (`nodejs_active_handles`...),
 * which stays, so they are dropped.
 */
const LINT_FAILURES = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

let shared: Registry | null = null;

/**
 * The process's CPU, memory, file descriptors, event-loop lag, GC and heap figures. One registry for the
 * whole process however many servers it runs: they are facts of the process, and prom-client's event-loop
 * and GC observers are started once (they hold no handle that keeps the process alive).
 */
export function processRegistry(): Registry {
  if (shared) return shared;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
  for (const name of LINT_FAILURES) registry.removeSingleMetric(METRIC_PREFIX + name);
  shared = registry;
  return registry;
}
