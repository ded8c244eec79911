// METRICS and METRICS_PORT: where `channelkit serve` answers /metrics, checked at startup.
import type { MetricsOptions } from './endpoint';

/**
 * METRICS: `on` (the default; empty is unset) or `off`. METRICS_PORT: serve /metrics on that port
 * instead of PORT (0 picks a free one). A value outside those forms stops startup with a message naming
 * the variable, its value and the form expected; so does METRICS_PORT with METRICS=off, which contradict.
 */
export function metricsFromEnv(env: NodeJS.ProcessEnv): boolean | MetricsOptions {
  const setting = env.METRICS ?? '';
  if (setting !== '' && setting !== 'on' && setting !== 'off') {
    throw new Error(`METRICS: "${setting}" is not a setting; expected on or off (default on: GET /metrics on PORT)`);
  }
  const portText = env.METRICS_PORT ?? '';
  if (portText === '') return setting !== 'off';
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port <= 65535)) {
    throw new Error(`METRICS_PORT: "${portText}" is not a port; expected an integer from 0 to 65535 (0 picks a free port)`);
  }
  if (setting === 'off') throw new Error(`METRICS_PORT: "${portText}" is set while METRICS=off; unset one of them`);
  return { port };
}
