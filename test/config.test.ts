import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { SETTINGS, serveConfig } from '../src/config';
import { runCli } from './support/processes';

const ROOT = join(__dirname, '..');

/** The variables named in the first column of the README's environment table. */
function readmeVariables(): string[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('| variable | meaning | default |');
  expect(start).toBeGreaterThan(-1);
  const rows = readme.slice(start).split('\n').slice(2);
  const names: string[] = [];
  for (const row of rows) {
    if (!row.startsWith('|')) break;
    names.push(...[...row.split('|')[1].matchAll(/`([A-Z_]+)`/g)].map((match) => match[1]));
  }
  return names;
}

/** Every `env.NAME` / `process.env.NAME` read by the framework and the demo app. */
function variablesRead(): Set<string> {
  const files: string[] = [join(ROOT, 'routing.ts')];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) walk(path);
      else if (path.endsWith('.ts')) files.push(path);
    }
  };
  walk(join(ROOT, 'src'));
  walk(join(ROOT, 'consumers'));
  const names = new Set<string>();
  for (const file of files) {
    for (const match of readFileSync(file, 'utf8').matchAll(/\benv\??\.([A-Z][A-Z_]+)\b/g)) names.add(match[1]);
  }
  names.delete('JEST_WORKER_ID'); // the logger's test default, not a setting
  return names;
}

describe('configuration in one place', () => {
  test('the README table lists exactly the variables of SETTINGS', () => {
    expect(readmeVariables().sort()).toEqual(SETTINGS.map((setting) => setting.name).sort());
  });

  test('every variable the code reads is in SETTINGS', () => {
    const known = new Set(SETTINGS.map((setting) => setting.name));
    expect([...variablesRead()].filter((name) => !known.has(name))).toEqual([]);
  });

  test('serveConfig reads one typed object with the defaults', () => {
    const { config, rest } = serveConfig({}, ['--workers', '2', 'app.ts']);
    expect(rest).toEqual(['app.ts']);
    expect(config).toEqual({ host: undefined, port: undefined, logLevel: 'info', workers: 2, layer: { kind: 'memory' }, layerKeys: undefined, metrics: true, perMessageDeflate: false });
    expect(serveConfig({ PERMESSAGE_DEFLATE: 'on' }, []).config.perMessageDeflate).toBe(true);
  });

  test.each([
    [{ PORT: 'eighty' }, /^PORT: "eighty" is not a port; expected an integer from 0 to 65535/],
    [{ PORT: '70000' }, /^PORT: "70000" is not a port/],
    [{ LOG_LEVEL: 'loud' }, /^LOG_LEVEL: "loud" is not a log level; expected one of fatal, error, warn, info, debug, trace, silent/],
    [{ WORKERS: 'many' }, /^WORKERS: "many" is not a number of worker processes; expected a positive integer/],
    [{ REDIS_URL: 'localhost:6379' }, /^REDIS_URL: "localhost:6379" is not a Redis URL; expected redis:\/\/host:port/],
    [{ REDIS_CLUSTER_URL: 'http://x' }, /^REDIS_CLUSTER_URL: "http:\/\/x" is not a Redis URL/],
    [{ REDIS_URL: 'redis://a:1', CHANNEL_LAYER: 'kafka' }, /^CHANNEL_LAYER: "kafka" is not a channel layer; expected pubsub or list/],
    [{ REDIS_SENTINELS: 'nohost' }, /^REDIS_SENTINELS: /],
    [{ REDIS_SENTINEL_MASTER: 'mymaster' }, /^REDIS_SENTINEL_MASTER: set without REDIS_SENTINELS/],
    [{ REDIS_URL: 'redis://a:1', REDIS_TLS_CA: '/no/such/ca.pem' }, /^REDIS_TLS_CA: cannot read "\/no\/such\/ca.pem" \(ENOENT\); expected the path of a PEM file/],
    [{ CHANNEL_LAYER_KEYS: 'a,,b' }, /^CHANNEL_LAYER_KEYS: an empty key in a list of 3; expected comma-separated keys/],
    [{ METRICS: 'maybe' }, /^METRICS: "maybe" is not a setting; expected on or off/],
    [{ METRICS_PORT: 'x' }, /^METRICS_PORT: "x" is not a port/],
    [{ PERMESSAGE_DEFLATE: 'yes' }, /^PERMESSAGE_DEFLATE: "yes" is not a setting; expected on or off/],
  ])('%j stops startup naming the variable, its value and the expected form', (env, message) => {
    expect(() => serveConfig(env, [])).toThrow(message);
  });

  test('channelkit serve with a bad value exits 1 with that message, and --help lists every variable', async () => {
    const bad = await runCli(['serve'], { LOG_LEVEL: 'loud', PORT: '0' });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/LOG_LEVEL: "loud" is not a log level/);
    const help = await runCli(['--help'], {});
    for (const setting of SETTINGS) expect(help.stderr).toContain(setting.name);
  }, 60_000);
});
