// TLS (rediss:// with a private CA) and Redis ACL users, against a redis-server with --tls-port and certificates made here with openssl.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'redis';
import { createPublisher, RedisChannelLayer, RedisPubSubChannelLayer } from '../../../src';
import { channelLayerFromEnv, layerChoiceFromEnv, reportUnreachableAtStartup } from '../../../src/layers/from-env';
import type { ChannelLayer } from '../../../src/layers/layer';
import { memoryLogger } from '../../support/logs';
import { runCli } from '../../support/processes';
import { describeRedis, freePort, RedisServer } from '../../support/redis';
import { until } from '../../support/wait';

/** A CA and a server certificate for 127.0.0.1 signed by it, in `dir`. */
function makeCertificates(dir: string): { ca: string; cert: string; key: string } {
  const file = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', file('ca.key'), '-out', file('ca.pem'), '-days', '1', '-subj', '/CN=channelkit test CA');
  openssl('req', ...ec, '-keyout', file('server.key'), '-out', file('server.csr'), '-subj', '/CN=127.0.0.1');
  writeFileSync(file('ext.cnf'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n');
  openssl('x509', '-req', '-in', file('server.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-CAcreateserial', '-out', file('server.pem'), '-days', '1', '-extfile', file('ext.cnf'));
  return { ca: file('ca.pem'), cert: file('server.pem'), key: file('server.key') };
}

// The list layer's user: its keys only, and no channel at all. The pub/sub layer's: no key, every channel
// (its per-process PSUBSCRIBE pattern, `*.<id>!*`, is only allowed by allchannels; see README).
const LIST_USER = { name: 'chk_list', password: 'list-S3cret-pw-7f1d' };
const PUBSUB_USER = { name: 'chk_pubsub', password: 'pubsub-S3cret-pw-9a2c' };
const WRONG_PASSWORD = 'wrong-S3cret-pw-0b3e';
const PASSWORDS = [LIST_USER.password, PUBSUB_USER.password, WRONG_PASSWORD];

describeRedis('Redis over TLS with ACL users', () => {
  const dir = mkdtempSync(join(tmpdir(), 'channelkit-tls-'));
  let certs: { ca: string; cert: string; key: string };
  let redis: RedisServer;
  let tlsPort: number;
  const layers: ChannelLayer[] = [];
  const url = (user: { name: string }, password: string) => `rediss://${user.name}:${password}@127.0.0.1:${tlsPort}`;
  const track = <T extends ChannelLayer>(layer: T): T => {
    layers.push(layer);
    return layer;
  };

  beforeAll(async () => {
    certs = makeCertificates(dir);
    tlsPort = await freePort();
    redis = await RedisServer.start({
      args: [
        '--tls-port', String(tlsPort), '--tls-cert-file', certs.cert, '--tls-key-file', certs.key,
        '--tls-ca-cert-file', certs.ca, '--tls-auth-clients', 'no',
        '--user', LIST_USER.name, 'on', `>${LIST_USER.password}`, 'resetkeys', '~asgi*', 'resetchannels', '+@all', '-@dangerous',
        '--user', PUBSUB_USER.name, 'on', `>${PUBSUB_USER.password}`, 'resetkeys', '~asgi*', 'allchannels', '+@all', '-@dangerous',
      ],
    });
  });
  afterEach(async () => {
    await Promise.all(layers.splice(0).map((layer) => layer.close()));
  });
  afterAll(async () => {
    await redis?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the ACL users are limited: no key outside asgi*, and the list user no channel', async () => {
    const client = createClient({ url: url(LIST_USER, LIST_USER.password), socket: { tls: true, ca: readFileSync(certs.ca) } });
    client.on('error', () => undefined);
    await client.connect();
    try {
      await expect(client.set('other', '1')).rejects.toThrow(/NOPERM/);
      await expect(client.publish('asgi__group__x', 'x')).rejects.toThrow(/NOPERM/);
      await expect(client.set('asgi:probe', '1')).resolves.toBe('OK');
    } finally {
      client.destroy();
    }
  });

  test('the list layer: group send and receive over rediss:// as the ACL user, CA from the option', async () => {
    const ca = readFileSync(certs.ca);
    const [a, b] = [0, 1].map(() => track(new RedisChannelLayer({ url: url(LIST_USER, LIST_USER.password), tlsCa: ca })));
    const channel = await a.newChannel();
    await a.groupAdd('tls_room', channel);
    await b.groupSend('tls_room', { type: 'chat.message', message: 'over tls' });
    expect(await a.receive(channel)).toEqual({ type: 'chat.message', message: 'over tls' });
    await b.send('tls.jobs', { type: 'job' });
    expect(await a.receive('tls.jobs')).toEqual({ type: 'job' });
  });

  test('the pub/sub layer: group send and send to a channel over rediss:// as the ACL user', async () => {
    const ca = readFileSync(certs.ca);
    const [a, b] = [0, 1].map(() => track(new RedisPubSubChannelLayer({ url: url(PUBSUB_USER, PUBSUB_USER.password), tlsCa: ca })));
    const channel = await a.newChannel();
    await a.groupAdd('tls_room', channel);
    await b.groupSend('tls_room', { type: 'chat.message', message: 'over tls' });
    expect(await a.receive(channel)).toEqual({ type: 'chat.message', message: 'over tls' });
    await b.send(channel, { type: 'direct' });
    expect(await a.receive(channel)).toEqual({ type: 'direct' });
  });

  test('the pub/sub layer as a user without every channel says why it cannot receive', async () => {
    const { logger, text } = memoryLogger();
    const layer = track(new RedisPubSubChannelLayer({ url: url(LIST_USER, LIST_USER.password), tlsCa: readFileSync(certs.ca), logger }));
    await layer.newChannel();
    await until(() => text().includes('refused this process'), 5000, 'the refusal to be logged');
    expect(text()).toMatch(/allchannels/);
  });

  test('without the CA the certificate is refused and the layer stays degraded', async () => {
    const { logger, text } = memoryLogger();
    const layer = track(new RedisChannelLayer({ url: url(LIST_USER, LIST_USER.password), logger, connectTimeout: 500 }));
    await until(() => /certificate/i.test(layer.health().detail ?? ''), 5000, 'a certificate error in health');
    expect(layer.health().state).toBe('degraded');
    expect(text()).toMatch(/cannot reach Redis/);
  });

  test('passwords never reach the logs: a refused login, a lost and regained connection, the startup report', async () => {
    const { logger, text } = memoryLogger();
    const ca = readFileSync(certs.ca);
    const env = { REDIS_URL: url(LIST_USER, WRONG_PASSWORD), REDIS_TLS_CA: certs.ca, CHANNEL_LAYER: 'list' };
    // A wrong password, through the environment as `serve` reads it, with the startup report.
    const refused = track(await channelLayerFromEnv(env, logger));
    expect(await reportUnreachableAtStartup(refused, layerChoiceFromEnv(env), logger, 1000)).toBe(false);
    expect(text()).toMatch(/WRONGPASS|invalid username-password/);
    // The right one, then Redis killed and restarted under it.
    const list = track(new RedisChannelLayer({ url: url(LIST_USER, LIST_USER.password), tlsCa: ca, logger }));
    const pubsub = track(new RedisPubSubChannelLayer({ url: url(PUBSUB_USER, PUBSUB_USER.password), tlsCa: ca, logger }));
    await list.newChannel();
    await pubsub.newChannel();
    await redis.stop();
    await until(() => list.health().state === 'degraded' && pubsub.health().state === 'degraded', 5000, 'both layers to see the loss');
    await redis.start();
    await until(() => list.health().state === 'up' && pubsub.health().state === 'up', 10_000, 'both layers back');
    const logged = text();
    expect(logged).toMatch(/lost Redis/);
    expect(logged).toMatch(/reconnected/);
    for (const password of PASSWORDS) expect(logged).not.toContain(password);
  });

  test('the publisher and the CLI publish over rediss:// with REDIS_TLS_CA, and a refused CLI does not print the password', async () => {
    const layer = track(new RedisPubSubChannelLayer({ url: url(PUBSUB_USER, PUBSUB_USER.password), tlsCa: readFileSync(certs.ca) }));
    const channel = await layer.newChannel();
    await layer.groupAdd('cli_room', channel);
    const publisher = await createPublisher({ url: url(PUBSUB_USER, PUBSUB_USER.password), tlsCa: readFileSync(certs.ca) });
    try {
      expect(await publisher.groupSend('cli_room', { type: 'chat.message', message: 'from the publisher' })).toBe(1);
    } finally {
      await publisher.close();
    }
    expect(await layer.receive(channel)).toEqual({ type: 'chat.message', message: 'from the publisher' });

    const env = { REDIS_URL: url(PUBSUB_USER, PUBSUB_USER.password), REDIS_TLS_CA: certs.ca, REDIS_CLUSTER_URL: '' };
    const ok = await runCli(['publish', '--group', 'cli_room', '{"type": "chat.message", "message": "from the cli"}'], env);
    expect(ok.stderr).toBe('');
    expect(ok.stdout).toContain('published to group cli_room');
    expect(await layer.receive(channel)).toEqual({ type: 'chat.message', message: 'from the cli' });

    const refused = await runCli(['publish', '--group', 'cli_room', '{"type": "x"}'], { ...env, REDIS_URL: url(PUBSUB_USER, WRONG_PASSWORD) });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/WRONGPASS|cannot reach Redis/);
    expect(refused.stdout + refused.stderr).not.toContain(WRONG_PASSWORD);
  });
});
