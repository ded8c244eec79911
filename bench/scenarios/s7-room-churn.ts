// S7 room churn: long-lived connections join and leave rooms over their open socket while group sends go on;
// joins+leaves per second, whether delivery stayed exact, and the Redis (un)subscribe commands per join.
import { BenchRedis } from './bench-redis';
import { Child, type ServerChild, spawn } from '../child';
import { connectClients, type Scenario, sleep, spawnLoadgens, startServer } from '../harness';
import { LABEL, type SystemName, config } from '../options';
import type { LoadgenReply } from '../protocol';
import type { PublisherCommand, PublisherReply } from '../publisher';
import { fmt, ratio, table } from '../table';
import { commandStats, subscriptions } from './redis-cost';

type Churned = Omit<Extract<LoadgenReply, { type: 'roomed' }>, 'type'>;

interface S7Row extends Churned {
  system: SystemName;
  /** Group sends made while the clients churned, and the PUBLISH commands Redis counted meanwhile. */
  sent: number;
  published: number;
  /** SUBSCRIBE + SSUBSCRIBE + PSUBSCRIBE calls, and the UNSUBSCRIBE family, over the churn (INFO commandstats). */
  subscribeCalls: number;
  unsubscribeCalls: number;
  /** Every other command seen, per join (PUBLISH of the publisher included). */
  others: string;
  /** Subscriptions held by all processes (channels) before the churn and after it settled. */
  subscriptionsBefore: number;
  subscriptionsAfter: number;
}

const SUBSCRIBE = new Set(['subscribe', 'ssubscribe', 'psubscribe']);
const UNSUBSCRIBE = new Set(['unsubscribe', 'sunsubscribe', 'punsubscribe']);

async function s7(system: SystemName): Promise<S7Row> {
  const { clientsPerServer, rooms, dwellMs, durationMs, rate, payloadBytes } = config.s7;
  const redis = await BenchRedis.start();
  const { admin } = redis;
  const env = { REDIS_URL: redis.url };
  const servers: ServerChild[] = [];
  const loadgens = spawnLoadgens(clientsPerServer * 2, 1);
  let publisher: Child<PublisherCommand, PublisherReply> | null = null;
  try {
    // Every client starts in a lobby nobody sends to; the rooms come and go over the open connection.
    for (let i = 0; i < 2; i++) {
      const { server, port } = await startServer(system, [], env);
      servers.push(server);
      await connectClients(system, server, port, loadgens, clientsPerServer, clientsPerServer, ['lobby']);
    }
    publisher = new Child<PublisherCommand, PublisherReply>(spawn('publisher.ts', [], env, [system]), 'publisher');
    await publisher.wait('ready');
    await sleep(500);
    const names = Array.from({ length: rooms }, (_, i) => `r${i}`);
    const [subscriptionsBefore] = await subscriptions(admin);
    const statsBefore = await commandStats(admin);
    const mode = system === 'socketio' ? 'sio' : 'ws';
    const [stepped, ...churned] = await Promise.all([
      publisher.request(
        { cmd: 'step', group: names[0], groups: names, settle: true, roomSeq: true, rate, durationMs, seqStart: 0, payloadBytes },
        'stepped',
        durationMs + 30_000,
      ),
      ...loadgens.map((l) => l.request({ cmd: 'rooms', mode, prefix: 'r', rooms, dwellMs, durationMs }, 'roomed', durationMs + 60_000)),
    ]);
    const statsAfter = await commandStats(admin);
    await sleep(500); // the last leaves' UNSUBSCRIBEs
    const [subscriptionsAfter] = await subscriptions(admin);
    const sum = (key: keyof Churned): number => churned.reduce((s, r) => s + r[key], 0);
    const joins = sum('joins');
    let subscribeCalls = 0;
    let unsubscribeCalls = 0;
    let published = 0;
    const others: string[] = [];
    for (const [name, calls] of statsAfter) {
      if (name === 'info' || name.startsWith('client')) continue; // the bench's own reads
      const delta = calls - (statsBefore.get(name) ?? 0);
      if (delta <= 0) continue;
      if (name === 'publish' || name === 'spublish') published += delta;
      if (SUBSCRIBE.has(name)) subscribeCalls += delta;
      else if (UNSUBSCRIBE.has(name)) unsubscribeCalls += delta;
      else others.push(`${name.toUpperCase()} ${fmt(delta / Math.max(1, joins), 2)}`);
    }
    return {
      system,
      joins,
      leaves: sum('leaves'),
      received: sum('received'),
      lost: sum('lost'),
      duplicates: sum('duplicates'),
      strays: sum('strays'),
      late: sum('late'),
      timeouts: sum('timeouts'),
      ms: Math.max(...churned.map((r) => r.ms)),
      sent: stepped.sent,
      published,
      subscribeCalls,
      unsubscribeCalls,
      others: others.join(', '),
      subscriptionsBefore,
      subscriptionsAfter,
    };
  } finally {
    if (publisher) await publisher.stop();
    await Promise.all(loadgens.map((l) => l.stop()));
    for (const server of servers) await server.stop();
    await redis.close();
  }
}

const perSecond = (r: S7Row): number => (r.joins + r.leaves) / (r.ms / 1000);
const exact = (r: S7Row): boolean => r.lost === 0 && r.duplicates === 0 && r.strays === 0 && r.timeouts === 0;

function printS7(rows: S7Row[]): void {
  const c = config.s7;
  const ck = rows.find((r) => r.system === 'channelkit');
  console.log(
    `\nS7 room churn: one private redis-server, two server processes with ${fmt(c.clientsPerServer)} long-lived clients each; for ` +
      `${c.durationMs / 1000} s every client joins a random one of ${fmt(c.rooms)} rooms over its open connection (channelkit: a \`j:<room>\` ` +
      `frame, groupAdd, then an \`ok\` frame; Socket.IO: an event with an acknowledgement, socket.join), stays ${c.dwellMs} ms once ` +
      `acknowledged, leaves the same way, and joins the next; meanwhile an outside publisher sends ${fmt(c.rate)} group sends/s ` +
      `round-robin over the rooms. Exact: every message sent to a room after the join was acknowledged arrived (a gap is lost), ` +
      `none twice or out of order, none for a room the client had left (a message sent before the leave was acknowledged may still ` +
      `come: counted as late, not wrong), no request unanswered 10 s. Redis commands from INFO commandstats over the churn.`,
  );
  console.log(
    table(
      [
        'system',
        'joins+leaves /s',
        'joins',
        'exact',
        'group sends (PUBLISH seen)',
        'room msgs received',
        'lost',
        'twice / out of order',
        'for a left room',
        'late (sent before the leave ack)',
        'unanswered',
        '(UN)SUBSCRIBE commands / join',
        'SUBSCRIBE-family / join',
        'UNSUBSCRIBE-family / leave',
        'other commands / join',
        'subscriptions before → after',
        'channelkit / this (joins+leaves /s)',
      ],
      rows.map((r) => [
        LABEL[r.system],
        fmt(perSecond(r)),
        fmt(r.joins),
        exact(r) ? 'yes' : 'no',
        `${fmt(r.sent)} (${fmt(r.published)})`,
        fmt(r.received),
        fmt(r.lost),
        fmt(r.duplicates),
        fmt(r.strays),
        fmt(r.late),
        fmt(r.timeouts),
        fmt((r.subscribeCalls + r.unsubscribeCalls) / Math.max(1, r.joins), 3),
        fmt(r.subscribeCalls / Math.max(1, r.joins), 3),
        fmt(r.unsubscribeCalls / Math.max(1, r.leaves), 3),
        r.others || 'none',
        `${fmt(r.subscriptionsBefore)} → ${fmt(r.subscriptionsAfter)}`,
        ck ? ratio(perSecond(ck), perSecond(r)) : 'n/a',
      ]),
    ),
  );
}

/** Both systems through Redis: channelkit's RedisPubSubChannelLayer and Socket.IO's redis-adapter. */
export const s7Scenario: Scenario<S7Row> = {
  name: 's7',
  which: (systems) => systems.filter((x) => x === 'channelkit' || x === 'socketio'),
  run: s7,
  print: printS7,
  profiled: false,
};
