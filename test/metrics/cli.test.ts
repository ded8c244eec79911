// `channelkit serve` and its metrics settings: /metrics on PORT by default, METRICS=off, METRICS_PORT, bad values.
import { metricsFromEnv } from '../../src/metrics/from-env';
import { sample, scrape } from '../support/metrics';
import { ServerProcess, runCli } from '../support/processes';

/** No Redis from the environment running the tests leaks into a child. */
const BASE = { REDIS_URL: '', REDIS_CLUSTER_URL: '', CHANNEL_LAYER: '', PORT: '0', METRICS: '', METRICS_PORT: '' };

describe('channelkit serve: where /metrics is', () => {
  const running: ServerProcess[] = [];
  afterEach(async () => {
    for (const server of running.splice(0)) await server.stop();
  });
  const serve = (env: NodeJS.ProcessEnv) => {
    const server = new ServerProcess({ ...BASE, ...env });
    running.push(server);
    return server;
  };

  test('by default on PORT, with the process metrics', async () => {
    const port = await serve({}).ready;
    const { status, text } = await scrape(`http://127.0.0.1:${port}/metrics`);
    expect(status).toBe(200);
    expect(sample(text, 'channelkit_connections')).toBe(0);
    expect(sample(text, 'channelkit_process_open_fds')).toBeGreaterThan(0);
  });

  test('METRICS=off: 404', async () => {
    const port = await serve({ METRICS: 'off' }).ready;
    expect((await scrape(`http://127.0.0.1:${port}/metrics`)).status).toBe(404);
    // The rest of the server is as before.
    expect((await scrape(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
  });

  test('METRICS_PORT: served on that port, and not on PORT', async () => {
    const server = serve({ METRICS_PORT: '0' });
    const port = await server.ready;
    const metricsPort = Number(/"port":(\d+),"msg":"metrics listening"/.exec(server.output)?.[1]);
    expect(metricsPort).toBeGreaterThan(0);
    expect(metricsPort).not.toBe(port);
    expect((await scrape(`http://127.0.0.1:${metricsPort}/metrics`)).status).toBe(200);
    expect((await scrape(`http://127.0.0.1:${port}/metrics`)).status).toBe(404);
  });

  test('a bad METRICS or METRICS_PORT stops startup naming the variable, its value and the form', async () => {
    const bad = await runCli(['serve'], { ...BASE, METRICS: 'yes' });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('METRICS: "yes" is not a setting; expected on or off');
    const badPort = await runCli(['serve'], { ...BASE, METRICS_PORT: '70000' });
    expect(badPort.code).not.toBe(0);
    expect(badPort.stderr).toContain('METRICS_PORT: "70000" is not a port');
  });
});

describe('metricsFromEnv', () => {
  test('unset, empty or on: on the server port; off: off; METRICS_PORT: its own port', () => {
    expect(metricsFromEnv({})).toBe(true);
    expect(metricsFromEnv({ METRICS: '', METRICS_PORT: '' })).toBe(true);
    expect(metricsFromEnv({ METRICS: 'on' })).toBe(true);
    expect(metricsFromEnv({ METRICS: 'off' })).toBe(false);
    expect(metricsFromEnv({ METRICS_PORT: '9464' })).toEqual({ port: 9464 });
    expect(metricsFromEnv({ METRICS: 'on', METRICS_PORT: '0' })).toEqual({ port: 0 });
  });

  test('contradictions and bad values throw, naming the variable', () => {
    expect(() => metricsFromEnv({ METRICS: 'off', METRICS_PORT: '9464' })).toThrow('METRICS_PORT: "9464" is set while METRICS=off; unset one of them');
    expect(() => metricsFromEnv({ METRICS: 'true' })).toThrow(/^METRICS: "true"/);
    expect(() => metricsFromEnv({ METRICS_PORT: 'abc' })).toThrow(/^METRICS_PORT: "abc" is not a port; expected an integer from 0 to 65535/);
  });
});
