// The Redis pub/sub layer's receive path alone: CPU per group message received from Redis, with members that
// only count (no consumers, no sockets), so what S6 pays between Redis and local delivery shows without the
// socket writes around it. The group sends come from bench/publisher.ts, as in S6.
// `ts-node --transpile-only bench/layer-receive.ts [--groups=1000] [--members=4] [--rate=2500] [--seconds=5] [--rounds=3] [--direct]`
// --direct: no Redis traffic; the layer's group listener is called in a loop with the bytes node-redis would hand it
// (ns per message, hot caches): the layer's own part (group name, lookups, decode, local delivery) alone; then the
// decode of such a message alone, by the layer's codec and by @msgpack/msgpack's Decoder.
import { Child, spawn } from './child';
import type { PublisherCommand, PublisherReply } from './publisher';
import { Decoder } from '@msgpack/msgpack';
import { BenchRedis } from './scenarios/bench-redis';
import { poll } from '../test/support/wait';
import type { LayerMessage, MessageListener } from '../src/layers/layer';
import { RedisPubSubChannelLayer } from '../src/layers/redis/pubsub';
import { MsgpackCodec } from '../src/layers/codec';
import { makePayload } from './protocol';

const flag = (name: string, fallback: number): number => {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`));
  return arg ? Number(arg.slice(name.length + 3)) : fallback;
};
// S6 in room affinity: 2,000 rooms of 4 over two processes, so each process holds 1,000 and gets half the sends.
const groups = flag('groups', 1000);
const members = flag('members', 4);
const rate = flag('rate', 2500);
const seconds = flag('seconds', 5);
const rounds = flag('rounds', 3);
const direct = process.argv.includes('--direct');

/** A member that takes every message: what is measured stops at local delivery. */
class Counter implements MessageListener {
  static received = 0;
  offer(_message: LayerMessage): boolean {
    Counter.received++;
    return true;
  }
}

async function main(): Promise<void> {
  const redis = await BenchRedis.start();
  const layer = new RedisPubSubChannelLayer({ url: redis.url });
  const publisher = new Child<PublisherCommand, PublisherReply>(spawn('publisher.ts', [], { REDIS_URL: redis.url }, ['channelkit']), 'publisher');
  try {
    const names = Array.from({ length: groups }, (_, i) => `r${i}`);
    const counter = new Counter();
    for (const group of names) {
      for (let m = 0; m < members; m++) {
        const channel = await layer.newChannel();
        await layer.listen(channel, counter);
        await layer.groupAdd(group, channel);
      }
    }
    if (direct) return receiveDirect(layer, names);
    await publisher.wait('ready');
    let seq = 0;
    const step = async (durationMs: number): Promise<{ sent: number; cpuUs: number }> => {
      const from = Counter.received;
      const cpu = process.cpuUsage();
      const stepped = await publisher.request(
        { cmd: 'step', group: names[0], groups: names, settle: true, rate, durationMs, seqStart: seq, payloadBytes: 64 },
        'stepped',
        durationMs + 30_000,
      );
      seq += stepped.sent;
      await poll(async () => Counter.received - from >= stepped.sent * members, 10_000, 5);
      const used = process.cpuUsage(cpu);
      if (Counter.received - from !== stepped.sent * members) throw new Error(`${Counter.received - from} of ${stepped.sent * members} delivered`);
      return { sent: stepped.sent, cpuUs: used.user + used.system };
    };
    await step(1000); // warm-up: the JIT's work is not the receive path's
    const perMessage: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const { sent, cpuUs } = await step(seconds * 1000);
      perMessage.push(cpuUs / sent);
    }
    const sorted = [...perMessage].sort((a, b) => a - b);
    console.log(
      `${groups} groups of ${members}, ${rate} sends/s for ${seconds} s: CPU µs per received message ` +
        `${perMessage.map((x) => x.toFixed(2)).join(' ')} (median ${sorted[Math.floor(sorted.length / 2)].toFixed(2)}; pid ${process.pid})`,
    );
  } finally {
    await publisher.stop();
    await layer.close();
    await redis.close();
  }
}

/** --direct: the listener node-redis calls, fed the same message bytes and channel names as S6 sends. */
function receiveDirect(layer: RedisPubSubChannelLayer, names: string[]): void {
  const listener = (layer as unknown as { onGroupMessage: (message: Buffer, channel: Buffer) => void }).onGroupMessage;
  const codec = new MsgpackCodec();
  const channels = names.map((group) => Buffer.from(`asgi__group__${group}`));
  const bodies = names.map((_, i) => Buffer.from(codec.encode({ type: 'bench.message', payload: makePayload(i, 'x'.repeat(64 - 27)) })));
  const perMessage: number[] = [];
  const n = 1_000_000;
  for (let r = 0; r < rounds + 1; r++) {
    const from = Counter.received;
    const started = process.hrtime.bigint();
    for (let i = 0; i < n; i++) listener(bodies[i % names.length], channels[i % names.length]);
    const ns = Number(process.hrtime.bigint() - started) / n;
    if (Counter.received - from !== n * members) throw new Error('not every message was delivered');
    if (r > 0) perMessage.push(ns); // the first round warms the JIT up
  }
  const sorted = [...perMessage].sort((a, b) => a - b);
  console.log(`direct, ${names.length} groups of ${members}: ns per message ${perMessage.map((x) => x.toFixed(0)).join(' ')} (min ${sorted[0].toFixed(0)})`);
  // The decode alone, the layer's codec beside @msgpack/msgpack's own Decoder, on the same bytes.
  const library = new Decoder();
  const decoders: [string, (bytes: Buffer) => unknown][] = [['codec', (bytes) => codec.decode(bytes)], ['@msgpack/msgpack', (bytes) => library.decode(bytes)]];
  for (const [name, decode] of decoders) {
    let best = Infinity;
    for (let r = 0; r < rounds + 1; r++) {
      const started = process.hrtime.bigint();
      for (let i = 0; i < n; i++) decode(bodies[i % names.length]);
      if (r > 0) best = Math.min(best, Number(process.hrtime.bigint() - started) / n);
    }
    console.log(`decode of one such message, ${name}: ${best.toFixed(0)} ns (min of ${rounds})`);
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
