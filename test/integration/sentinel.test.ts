// Redis Sentinel with real processes: a master, a replica, three Sentinels; the master is killed and the layers follow the promotion.
import { execFileSync } from 'node:child_process';
import { application, http } from '../../routing';
import { createPublisher, RedisChannelLayer, RedisPubSubChannelLayer, type SentinelOptions, Server } from '../../src';
import { DjangoProcess, djangoUnavailable } from '../interop/django-process';
import { memoryLogger } from '../support/logs';
import { runCli } from '../support/processes';
import { describeRedis, type SentinelGroup, startSentinelGroup } from '../support/redis';
import { Inbox, openClient } from '../support/sockets';
import { until, within } from '../support/wait';

const MASTER = 'chkmaster';
const django = djangoUnavailable();

async function readyz(server: Server): Promise<number> {
  return (await fetch(`http://127.0.0.1:${server.address().port}/readyz`)).status;
}

/** Waits for the Sentinels to name `address` as the master; a timeout shows their logs (votes, elections). */
async function promoted(group: SentinelGroup, address: string, what: string): Promise<void> {
  try {
    await until(() => group.currentMaster() === address, 40_000, what, 100);
  } catch (error) {
    throw new Error(`${(error as Error).message}\n${group.sentinelLogs()}`);
  }
}

function redisCli(address: string, ...args: string[]): string {
  const port = address.split(':')[1];
  return execFileSync('redis-cli', ['-p', port, ...args], { encoding: 'utf8' }).trim();
}

describeRedis('Redis Sentinel: the layers follow a failover', () => {
  let group: SentinelGroup;
  let sentinel: SentinelOptions;
  const { logger, text } = memoryLogger();
  const servers: Server[] = [];
  const inboxes: Inbox[] = [];
  const lists: RedisChannelLayer[] = [];

  beforeAll(async () => {
    group = await startSentinelGroup(MASTER);
    sentinel = { sentinels: group.addresses, masterName: MASTER };
  }, 30_000);
  afterAll(async () => {
    for (const inbox of inboxes) inbox.ws.terminate();
    for (const server of servers) {
      await server.close();
      await server.channelLayer.close();
    }
    await Promise.all(lists.map((layer) => layer.close()));
    await group?.close();
  });

  (django ? test.skip : test)('a Django process on channels_redis core through the same Sentinels shares groups with the list layer', async () => {
    const layer = new RedisChannelLayer({ sentinel });
    lists.push(layer);
    const host = JSON.stringify({ sentinels: group.addresses.map((address) => ['127.0.0.1', Number(address.split(':')[1])]), master_name: MASTER });
    // Django joins, channelkit sends.
    const member = new DjangoProcess('core', [host], ['join', 'sentinel_room', '1']);
    try {
      await member.ready();
      await layer.groupSend('sentinel_room', { type: 'chat.message', message: 'from channelkit' });
      expect(await member.message()).toMatchObject({ type: 'chat.message', message: 'from channelkit' });
      await member.succeeded();
    } finally {
      member.kill();
    }
    // channelkit joins, Django sends.
    const channel = await layer.newChannel();
    await layer.groupAdd('sentinel_room2', channel);
    const sender = new DjangoProcess('core', [host], ['group_send', 'sentinel_room2', JSON.stringify({ type: 'chat.message', message: 'from django' })]);
    await sender.succeeded();
    expect(await layer.receive(channel)).toMatchObject({ type: 'chat.message', message: 'from django' });
  });

  test('after the master is killed: /readyz 503 then 200, pub/sub resubscribed on the new master, list groups and queued messages kept, the publisher reaches clients', async () => {
    // Two demo servers on the pub/sub layer, a chat room across them.
    for (let i = 0; i < 2; i++) {
      const server = new Server({ app: application, http, port: 0, heartbeatInterval: 0, logger, channelLayer: new RedisPubSubChannelLayer({ sentinel, logger }) });
      servers.push(server);
      await server.listen();
    }
    const join = async (i: number) => {
      const inbox = new Inbox(await openClient(`ws://127.0.0.1:${servers[i].address().port}/ws/chat/failover/`));
      inboxes.push(inbox);
      return inbox;
    };
    await until(async () => (await readyz(servers[0])) === 200 && (await readyz(servers[1])) === 200, 10_000, 'both servers ready');
    const [alice, bob] = [await join(0), await join(1)];
    alice.ws.send(JSON.stringify({ message: 'before' }));
    expect(await bob.nextJson(5000)).toMatchObject({ message: 'before' });
    expect(await alice.nextJson(5000)).toMatchObject({ message: 'before' });

    // The list layer: a membership of its own channel, one of a shared channel (only replication keeps
    // that one: no process re-adds it), and three queued jobs; WAIT until the replica has them all.
    const listA = new RedisChannelLayer({ sentinel, logger });
    const listB = new RedisChannelLayer({ sentinel, logger });
    lists.push(listA, listB);
    const own = await listA.newChannel();
    await listA.groupAdd('jobs_group', own);
    await listB.groupAdd('jobs_group', 'jobs.shared');
    for (let i = 1; i <= 3; i++) await listB.send('jobs.shared', { type: 'job', n: i });
    const oldMaster = group.currentMaster()!;
    expect(oldMaster).toBe(`127.0.0.1:${group.master.port}`);
    expect(redisCli(oldMaster, 'WAIT', '1', '5000')).toBe('1');

    // Each step has its own deadline, so a stall fails by name; `steps` says how long each took.
    const steps: string[] = [];
    let last = Date.now();
    const step = (name: string) => {
      const now = Date.now();
      steps.push(`${name} ${now - last} ms`);
      last = now;
    };
    const killedAt = Date.now();
    await group.master.stop();
    await until(async () => (await readyz(servers[0])) === 503, 10_000, '/readyz 503 after the kill');
    const down = Date.now() - killedAt;
    step('/readyz 503');
    // A split vote makes the Sentinels retry after twice failover-timeout (10 s): 40 s allows three elections.
    await promoted(group, `127.0.0.1:${group.replica.port}`, 'the Sentinels to promote the replica');
    const promotedAt = Date.now();
    step('promotion');
    await until(async () => (await readyz(servers[0])) === 200 && (await readyz(servers[1])) === 200, 30_000, '/readyz 200 on the new master');
    const readyAfter = Date.now() - promotedAt;
    step('/readyz 200');

    // Pub/sub: both servers subscribed on the new master, and a chat message crosses again.
    const newMaster = `127.0.0.1:${group.replica.port}`;
    const numsub = redisCli(newMaster, 'PUBSUB', 'NUMSUB', 'asgi__group__chat_failover').split('\n');
    expect(Number(numsub[1])).toBe(2);
    alice.ws.send(JSON.stringify({ message: 'after' }));
    expect(await bob.nextJson(5000)).toMatchObject({ message: 'after' });
    expect(await alice.nextJson(5000)).toMatchObject({ message: 'after' });
    const deliveredAfter = Date.now() - promotedAt;
    step('chat');

    // The publisher through the Sentinels reaches the same clients.
    const publisher = await within(createPublisher({ sentinel }), 10_000, 'a publisher through the Sentinels');
    try {
      await within(publisher.groupSend('chat_failover', { type: 'chat.message', message: 'published' }), 10_000, 'the publisher\'s group send');
    } finally {
      await within(publisher.close(), 10_000, 'the publisher to close');
    }
    expect(await bob.nextJson(5000)).toMatchObject({ message: 'published' });
    step('publisher');
    // And `channelkit publish` with REDIS_SENTINELS / REDIS_SENTINEL_MASTER, as an operator runs it.
    const cli = await runCli(['publish', '--group', 'chat_failover', '{"type": "chat.message", "message": "from the cli"}'], {
      REDIS_SENTINELS: group.addresses.join(','),
      REDIS_SENTINEL_MASTER: MASTER,
      REDIS_URL: '',
      REDIS_CLUSTER_URL: '',
    });
    expect(cli).toMatchObject({ killed: false, stderr: '', code: 0 });
    expect(await bob.nextJson(5000)).toMatchObject({ message: 'from the cli' });
    step('cli publish');

    // List layer: the jobs queued before the kill, then a group send that reaches both members.
    for (let i = 1; i <= 3; i++) expect(await within(listA.receive('jobs.shared'), 10_000, `queued job ${i} after the failover`)).toEqual({ type: 'job', n: i });
    await until(() => listA.health().state === 'up' && listB.health().state === 'up', 30_000, 'list layers up');
    await within(listB.groupSend('jobs_group', { type: 'job', n: 4 }), 10_000, 'a list group send after the failover');
    expect(await within(listA.receive(own), 10_000, 'the group send on the own channel')).toEqual({ type: 'job', n: 4 });
    expect(await within(listA.receive('jobs.shared'), 10_000, 'the group send on the shared channel')).toEqual({ type: 'job', n: 4 });
    step('list layer');

    // eslint-disable-next-line no-console
    console.log(`sentinel failover: /readyz 503 ${down} ms after the kill; promotion ${promotedAt - killedAt} ms after the kill; /readyz 200 ${readyAfter} ms and chat delivered ${deliveredAfter} ms after the promotion; steps: ${steps.join(', ')}`);
    expect(text()).toContain('sentinel: the master moved');
  }, 120_000);

  test('a manual failover (SENTINEL FAILOVER, the old master demoted but alive): the layers move to the new master', async () => {
    // The killed master comes back empty; the Sentinels make it a replica of the new master.
    await group.master.start();
    const oldPort = group.master.port;
    await until(
      () => group.sentinels.every((s) => new RegExp(`\\nport\\n${oldPort}\\n[\\s\\S]*?flags\\nslave\\n`).test(s.cli('SENTINEL', 'REPLICAS', MASTER))) &&
        /master_link_status:up/.test(group.master.cli('INFO', 'replication')),
      30_000,
      'the restarted master to be a healthy replica',
      200,
    );
    const [alice, bob] = [inboxes[0], inboxes[1]];
    const listA = lists[lists.length - 2];
    const listB = lists[lists.length - 1];
    const own = await listA.newChannel();
    await listA.groupAdd('manual_group', own);

    const startedAt = Date.now();
    expect(group.sentinels[0].cli('SENTINEL', 'FAILOVER', MASTER).trim()).toBe('OK');
    await promoted(group, `127.0.0.1:${oldPort}`, 'the old master promoted back');
    const promotedAt = Date.now();
    // Writes reach the new master. (Redis Sentinel loses what the old master took between the promotion
    // and its demotion; the layers shorten that window, they cannot close it.)
    let sent = 0;
    await until(async () => {
      await listB.send('manual.jobs', { type: 'job', n: ++sent }).catch(() => undefined);
      return redisCli(`127.0.0.1:${oldPort}`, 'ZCARD', 'asgimanual.jobs') !== '0';
    }, 30_000, 'a list send to reach the new master', 100);
    const switchedAfter = Date.now() - promotedAt;
    expect(await listA.receive('manual.jobs')).toMatchObject({ type: 'job' });
    await until(async () => (await readyz(servers[0])) === 200 && (await readyz(servers[1])) === 200, 30_000, '/readyz 200');
    await until(() => Number(redisCli(`127.0.0.1:${oldPort}`, 'PUBSUB', 'NUMSUB', 'asgi__group__chat_failover').split('\n')[1]) === 2, 30_000, 'both servers subscribed on the new master');
    alice.ws.send(JSON.stringify({ message: 'after the manual failover' }));
    expect(await bob.nextJson(5000)).toMatchObject({ message: 'after the manual failover' });
    await until(() => listA.health().state === 'up' && listB.health().state === 'up', 30_000, 'list layers up');
    await listB.groupSend('manual_group', { type: 'job', n: 2 });
    expect(await listA.receive(own)).toEqual({ type: 'job', n: 2 });
    // eslint-disable-next-line no-console
    console.log(`sentinel manual failover: promotion ${promotedAt - startedAt} ms after SENTINEL FAILOVER; list sends on the new master ${switchedAfter} ms (${sent} sent) and chat delivered ${Date.now() - promotedAt} ms after the promotion`);
   }, 90_000);
});

describeRedis('Redis Sentinel with passwords on the Sentinels and the master', () => {
  const PASSWORD = 'Sentinel-and-master-pw-41c7';
  let group: SentinelGroup;
  const layers: Array<RedisChannelLayer | RedisPubSubChannelLayer> = [];

  beforeAll(async () => {
    // One password for both roles, so the group's own checks (redis-cli) can use it everywhere.
    group = await startSentinelGroup(
      MASTER,
      ['--requirepass', PASSWORD, '--masterauth', PASSWORD],
      [`sentinel auth-pass ${MASTER} ${PASSWORD}`, `requirepass ${PASSWORD}`, `sentinel sentinel-pass ${PASSWORD}`],
      PASSWORD,
    );
  }, 30_000);
  afterAll(async () => {
    await Promise.all(layers.map((layer) => layer.close()));
    await group?.close();
  });

  test('both layers reach the master with `password` and `sentinelPassword`; neither password is logged; a wrong Sentinel password is reported', async () => {
    const { logger, text } = memoryLogger();
    const sentinel: SentinelOptions = { sentinels: group.addresses, masterName: MASTER, password: PASSWORD, sentinelPassword: PASSWORD };
    const list = [new RedisChannelLayer({ sentinel, logger }), new RedisChannelLayer({ sentinel, logger })];
    const pubsub = [new RedisPubSubChannelLayer({ sentinel, logger }), new RedisPubSubChannelLayer({ sentinel, logger })];
    layers.push(...list, ...pubsub);
    for (const [a, b] of [list, pubsub]) {
      const channel = await a.newChannel();
      await a.groupAdd('auth_room', channel);
      await b.groupSend('auth_room', { type: 'chat.message', message: 'authenticated' });
      expect(await a.receive(channel)).toEqual({ type: 'chat.message', message: 'authenticated' });
    }
    const refused = new RedisChannelLayer({ sentinel: { ...sentinel, sentinelPassword: 'wrong-Sentinel-pw-77' }, logger, connectTimeout: 500 });
    layers.push(refused);
    await until(() => text().includes('no Sentinel named master'), 10_000, 'the refused Sentinels to be reported');
    expect(refused.health().state).toBe('degraded');
    expect(text()).not.toContain(PASSWORD);
    expect(text()).not.toContain('wrong-Sentinel-pw-77');
  });
});
