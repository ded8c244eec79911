// Room churn for the Redis layer tests and the churn figure: channels of one layer join and leave groups while another layer sends to them.
import type { ChannelLayer, LayerMessage } from '../../../src/layers/layer';

export interface ChurnOptions {
  /** The layer whose channels join and leave (its subscriptions are what churns). */
  member: ChannelLayer;
  /** The layer that sends, one group send at a time (so call order is publish order). */
  sender: ChannelLayer;
  /** Group names are `<prefix><n>`, n < groups. */
  prefix: string;
  groups: number;
  /** Channels of `member`, each in one group at a time. */
  channels: number;
  durationMs: number;
  /** A member stays up to this long (random) after its probe arrived, then leaves. Default 20. */
  holdMs?: number;
  /** Milliseconds between the background sends to random groups. Default 2. */
  noiseEveryMs?: number;
  /**
   * Changes whenever the link was disturbed (Redis stopped, restarted); a join whose window saw a
   * change is not checked for delivery (only for duplicates). Default: never.
   */
  disturbance?: () => number;
  /** How long a probe may take to arrive before it counts as missing. Default 3000. */
  probeTimeoutMs?: number;
}

export interface ChurnResult {
  joins: number;
  leaves: number;
  sends: number;
  /** Joins whose delivery was checked: every send to the group between the join and its probe arrived. */
  checked: number;
  /** Sends a checked member should have got and did not (the probe included). */
  missing: number;
  /** Messages a channel received more than once. */
  duplicates: number;
  /** Messages a channel received from a group it was not in when they were sent (never expected). */
  strays: number;
}

interface Sent {
  seq: number;
  group: string;
}

/**
 * One group send at a time: `seq` numbers the sends in call order, which is their PUBLISH order
 * on the sender's one command connection, so "sent after the join resolved" is `seq > joinSeq`.
 */
class SerialSender {
  seq = 0;
  readonly sent: Sent[] = [];
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly layer: ChannelLayer) {}

  send(group: string): Promise<number | null> {
    const run = this.chain.then(async () => {
      const seq = ++this.seq;
      try {
        await this.layer.groupSend(group, { type: 'churn.message', seq, group });
      } catch {
        return null; // Redis down: not published; nobody is owed it
      }
      this.sent.push({ seq, group });
      return seq;
    });
    this.chain = run;
    return run;
  }

  /** Sends to `group` with seq in (after, upTo]. */
  between(group: string, after: number, upTo: number): number[] {
    const seqs: number[] = [];
    // `sent` is in seq order: search back from the end, where recent sends are.
    for (let i = this.sent.length - 1; i >= 0 && this.sent[i].seq > after; i--) {
      const entry = this.sent[i];
      if (entry.seq <= upTo && entry.group === group) seqs.push(entry.seq);
    }
    return seqs;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs the churn: each channel loops join a random group, wait for `groupAdd`, send it a probe
 * (through the serial sender), wait for the probe, check that every send to that group between
 * the join and the probe arrived, stay a little, leave. Background sends go to random groups all
 * along. A member present for a whole send (joined before it was sent, left after the later probe
 * arrived) must get it exactly once.
 */
export async function runChurn(options: ChurnOptions): Promise<ChurnResult> {
  const { member, sender: senderLayer, prefix, groups, channels, durationMs } = options;
  const holdMs = options.holdMs ?? 20;
  const noiseEveryMs = options.noiseEveryMs ?? 2;
  const disturbance = options.disturbance ?? (() => 0);
  const probeTimeoutMs = options.probeTimeoutMs ?? 3000;
  const sender = new SerialSender(senderLayer);
  const result: ChurnResult = { joins: 0, leaves: 0, sends: 0, checked: 0, missing: 0, duplicates: 0, strays: 0 };
  const pick = () => `${prefix}${Math.floor(Math.random() * groups)}`;
  let stopped = false;

  const memberLoop = async (): Promise<void> => {
    const channel = await member.newChannel();
    const received = new Map<number, number>();
    let current: string | null = null;
    let arrived: (() => void) | null = null;
    let waitingFor = -1;
    await member.listen(channel, {
      offer(message: LayerMessage) {
        const seq = message.seq as number;
        const count = (received.get(seq) ?? 0) + 1;
        received.set(seq, count);
        if (count > 1) result.duplicates++;
        if (message.group !== current) result.strays++;
        if (seq === waitingFor) arrived?.();
        return true;
      },
    });
    while (!stopped) {
      const group = pick();
      const before = disturbance();
      result.joins++;
      current = group;
      await member.groupAdd(group, channel);
      const joinSeq = sender.seq;
      const probe = new Promise<void>((resolve) => (arrived = resolve));
      const probeSeq = await sender.send(group);
      if (probeSeq !== null) {
        waitingFor = probeSeq;
        if (!received.has(probeSeq)) await Promise.race([probe, sleep(probeTimeoutMs)]);
        if (disturbance() === before) {
          result.checked++;
          for (const seq of sender.between(group, joinSeq, probeSeq)) if (!received.has(seq)) result.missing++;
        }
      }
      arrived = null;
      await sleep(Math.random() * holdMs);
      result.leaves++;
      await member.groupDiscard(group, channel);
      // A message to the group just left may still be on its way; it must not reach this channel.
      current = null;
    }
    member.unlisten(channel);
  };

  const noiseLoop = async (): Promise<void> => {
    while (!stopped) {
      await sender.send(pick());
      await sleep(noiseEveryMs);
    }
  };

  const loops = [noiseLoop(), ...Array.from({ length: channels }, memberLoop)];
  await sleep(durationMs);
  stopped = true;
  await Promise.all(loops);
  result.sends = sender.seq;
  return result;
}
