// The Sentinel and TLS variables of from-env.ts: what they choose, and the errors that name the variable.
import { join } from 'node:path';
import { layerChoiceFromEnv } from '../../src/layers/from-env';

describe('REDIS_SENTINELS, REDIS_SENTINEL_MASTER and REDIS_TLS_CA', () => {
  test('Sentinels and a master name choose the pub/sub layer (or the list layer) on that master, credentials included', () => {
    const env = {
      REDIS_SENTINELS: '10.0.0.1:26379, 10.0.0.2:26379',
      REDIS_SENTINEL_MASTER: 'mymaster',
      REDIS_USERNAME: 'app',
      REDIS_PASSWORD: 'pw',
      REDIS_SENTINEL_PASSWORD: 'spw',
    };
    expect(layerChoiceFromEnv(env)).toEqual({
      kind: 'pubsub',
      urls: [],
      sentinel: { sentinels: ['10.0.0.1:26379', '10.0.0.2:26379'], masterName: 'mymaster', username: 'app', password: 'pw', sentinelPassword: 'spw' },
    });
    expect(layerChoiceFromEnv({ ...env, CHANNEL_LAYER: 'list' }).kind).toBe('list');
  });

  test('a bad Sentinel address, a missing master name, or Sentinels with REDIS_URL stop startup naming the variable', () => {
    expect(() => layerChoiceFromEnv({ REDIS_SENTINELS: '10.0.0.1', REDIS_SENTINEL_MASTER: 'm' })).toThrow(
      'REDIS_SENTINELS: "10.0.0.1" is not a Sentinel address; expected host:port',
    );
    expect(() => layerChoiceFromEnv({ REDIS_SENTINELS: '10.0.0.1:26379' })).toThrow(/^REDIS_SENTINEL_MASTER: not set/);
    expect(() => layerChoiceFromEnv({ REDIS_SENTINEL_MASTER: 'm' })).toThrow(/^REDIS_SENTINEL_MASTER: set without REDIS_SENTINELS/);
    expect(() => layerChoiceFromEnv({ REDIS_SENTINELS: '10.0.0.1:26379', REDIS_SENTINEL_MASTER: 'm', REDIS_URL: 'redis://x:1' })).toThrow(
      /^REDIS_SENTINELS: set together with REDIS_URL/,
    );
    expect(() => layerChoiceFromEnv({ REDIS_SENTINELS: '10.0.0.1:26379', REDIS_SENTINEL_MASTER: 'm', REDIS_TLS_CA: __filename })).toThrow(
      /^REDIS_TLS_CA: set with REDIS_SENTINELS; TLS to a Sentinel-managed master is not supported yet/,
    );
  });

  test('REDIS_TLS_CA is read at startup; a missing file names the variable and the path', () => {
    const file = join(__dirname, 'from-env-redis.test.ts');
    const choice = layerChoiceFromEnv({ REDIS_URL: 'rediss://127.0.0.1:6380', REDIS_TLS_CA: file });
    expect(choice.kind === 'pubsub' && choice.tlsCa?.length).toBeGreaterThan(0);
    expect(() => layerChoiceFromEnv({ REDIS_URL: 'rediss://127.0.0.1:6380', REDIS_TLS_CA: '/nonexistent/ca.pem' })).toThrow(
      'REDIS_TLS_CA: cannot read "/nonexistent/ca.pem" (ENOENT); expected the path of a PEM file',
    );
  });

  test('a bad rediss:// URL with a password is reported without it', () => {
    expect(() => layerChoiceFromEnv({ REDIS_URL: 'rediss://user:hunter2@' })).toThrow(/REDIS_URL/);
    try {
      layerChoiceFromEnv({ REDIS_URL: 'rediss://user:hunter2@' });
    } catch (error) {
      expect((error as Error).message).not.toContain('hunter2');
    }
  });
});
