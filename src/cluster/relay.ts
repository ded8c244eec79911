// The primary's half of the workers layer: routes group sends and channel sends between worker processes.
import { type Codec, MsgpackCodec } from '../layers/codec';
import type { JoinFrom } from '../layers/history';
import type { LayerMessage } from '../layers/layer';
import { HistoryStore } from '../layers/history-store';
import type { PrimaryBatch, PrimaryMessage, WorkerBatch, WorkerMessage } from './messages';
import { PresenceTable } from './presence-table';

/** Where the relay writes to one worker: a cluster `Worker` (its `send`), or an in-process fake in tests. */
export interface RelayPort {
  send(batch: PrimaryBatch): void;
}

/**
 * Knows, per group, which workers have at least one member (each worker says so on its first join
 * and last leave; never per member), and per named channel which workers read it. A group send costs
 * one IPC message in (from the sender) and one out per other worker with members, whatever the
 * number of members: the bytes are the sender's, forwarded as they came, decoded once per worker.
 * Batches make that "at most": what one worker sent in one run goes out as one batch per worker.
 *
 * History groups have one sequencer, here: a group send to one (`record`) is decoded, stamped with
 * the group's epoch and next offset, kept (HistoryStore), and sent to every worker with members, the
 * sender included; a join (`recall`) gets the replay and makes its worker a member in the same step,
 * so, the pipe being ordered, its first live message is the one after the replay. The setHistory table
 * lives here too, and every worker that said `hello` gets each change, its author included; the
 * author's setHistory resolves once all have applied it, so from then on every worker records.
 *
 * Presence is one table here (PresenceTable): a join is added and answered with the snapshot, and
 * each change goes to every worker holding members of the group, the author included (its batcher
 * merges it into the diffs of its other members, as a Redis event would). A worker that goes takes
 * its members out, and the others see them leave.
 *
 * ```ts
 * const relay = new WorkersRelay();
 * const worker = cluster.fork();
 * relay.attach(worker.id, worker);
 * worker.on('message', (batch) => { if (isRelayMessage(batch)) relay.handle(worker.id, batch); });
 * worker.on('exit', () => relay.detach(worker.id));
 * ```
 */
export class WorkersRelay {
  private readonly ports = new Map<number, RelayPort>();
  /** group -> workers with members. */
  private readonly groups = new Map<string, Set<number>>();
  /** named channel -> workers that read it. */
  private readonly claims = new Map<string, Set<number>>();
  /** worker -> its groups and claims, to forget them when it goes. */
  private readonly held = new Map<number, { groups: Set<string>; claims: Set<string> }>();
  /** What one incoming batch makes for each worker, written once at its end. */
  private readonly out = new Map<number, PrimaryMessage[]>();
  private readonly history = new HistoryStore();
  private readonly presence = new PresenceTable();
  private readonly codec: Codec = new MsgpackCodec();
  /** Each kept message's stamped bytes, encoded once when recorded: a storm of joins re-encodes nothing. */
  private readonly bodies = new WeakMap<LayerMessage, Uint8Array>();
  /** Workers whose layer said hello: they get the history table's changes. */
  private readonly greeted = new Set<number>();
  /** Table changes not yet applied by every worker: the author's ack waits for the last of them. */
  private readonly changes = new Map<number, { author: number; authorSeq: number; waiting: Set<number> }>();
  private changeSeq = 0;

  attach(worker: number, port: RelayPort): void {
    this.ports.set(worker, port);
    this.held.set(worker, { groups: new Set(), claims: new Set() });
  }

  /** The worker exited (or its layer closed): its groups and claims go with it. */
  detach(worker: number): void {
    this.forget(worker);
    for (const [group, member] of this.presence.dropWorker(worker)) this.tell(group, { ck: 'pleft', group, member });
    this.ports.delete(worker);
    this.held.delete(worker);
    this.greeted.delete(worker);
    for (const seq of this.changes.keys()) this.applied(worker, seq);
    // Outside any incoming batch: what it made for the others (leaves, acks) goes now.
    this.writeOut();
  }

  /** Lets go of the histories (and their sweep timer). */
  close(): void {
    this.history.close();
  }

  /** Workers attached now. */
  get size(): number {
    return this.ports.size;
  }

  /** One batch from worker `from`: routes each message, then writes one batch to each worker concerned. */
  handle(from: number, batch: WorkerBatch): void {
    for (const message of batch.messages) this.route(from, message);
    this.writeOut();
  }

  private writeOut(): void {
    for (const [worker, messages] of this.out) this.ports.get(worker)?.send({ ck: 'batch', messages });
    this.out.clear();
  }

  private route(from: number, message: WorkerMessage): void {
    const held = this.held.get(from);
    if (held === undefined) return; // a message from a worker already detached
    switch (message.ck) {
      case 'group': {
        const workers = this.groups.get(message.group);
        if (workers === undefined) return;
        // One object for every worker: Node serializes it per pipe, nobody re-encodes the body.
        const out: PrimaryMessage = { ck: 'group', group: message.group, body: message.body };
        for (const worker of workers) if (worker !== from) this.write(worker, out);
        return;
      }
      case 'send':
        // A channel of a worker that is gone is dropped: at most once, as a dead process's channel on Redis.
        this.write(message.to, { ck: 'send', channel: message.channel, body: message.body });
        return;
      case 'named': {
        const workers = this.claims.get(message.channel);
        if (workers === undefined) return;
        const out: PrimaryMessage = { ck: 'send', channel: message.channel, body: message.body };
        for (const worker of workers) if (worker !== from) this.write(worker, out);
        return;
      }
      case 'join':
        add(this.groups, message.group, from);
        held.groups.add(message.group);
        this.write(from, { ck: 'ack', seq: message.seq });
        return;
      case 'leave':
        remove(this.groups, message.group, from);
        held.groups.delete(message.group);
        return;
      case 'claim':
        add(this.claims, message.channel, from);
        held.claims.add(message.channel);
        return;
      case 'hello':
        this.greeted.add(from);
        this.write(from, { ck: 'policies', table: this.history.policies.entries() });
        return;
      case 'policy': {
        this.history.policies.set(message.pattern, message.policy);
        const seq = ++this.changeSeq;
        const out: PrimaryMessage = { ck: 'policy', pattern: message.pattern, policy: message.policy, seq };
        // The author too: its answer to hello may have crossed this change, and would have undone it there.
        for (const worker of this.greeted) this.write(worker, out);
        this.changes.set(seq, { author: from, authorSeq: message.seq, waiting: new Set(this.greeted) });
        this.applied(-1, seq);
        return;
      }
      case 'applied':
        this.applied(from, message.seq);
        return;
      case 'record':
        this.record(message.group, message.body);
        return;
      case 'recall':
        this.recall(from, held.groups, message.group, message.from, message.seq);
        return;
      case 'pjoin': {
        const { group, member } = message;
        this.presence.join(group, member, from);
        this.tell(group, { ck: 'pjoined', group, member });
        this.write(from, { ck: 'members', seq: message.seq, members: this.presence.list(group) });
        return;
      }
      case 'pleave': {
        const member = this.presence.leave(message.group, message.id, from);
        if (member === undefined) return;
        // To the author too while it holds members there; with none left it has nobody to tell.
        this.tell(message.group, { ck: 'pleft', group: message.group, member });
        return;
      }
      case 'plist':
        this.write(from, { ck: 'members', seq: message.seq, members: this.presence.list(message.group) });
        return;
      case 'flush':
        this.forget(from);
        this.history.clear();
        for (const [group, member] of this.presence.dropWorker(from)) this.tell(group, { ck: 'pleft', group, member });
        this.write(from, { ck: 'ack', seq: message.seq });
        return;
      case 'bye':
        this.detach(from);
        return;
    }
  }

  /** A presence change, to every worker holding members of `group`. */
  private tell(group: string, message: PrimaryMessage): void {
    for (const worker of this.presence.workersOf(group)) this.write(worker, message);
  }

  /** Worker `worker` applied table change `seq` (or went): the author hears once nobody is left. */
  private applied(worker: number, seq: number): void {
    const change = this.changes.get(seq);
    if (change === undefined) return;
    change.waiting.delete(worker);
    if (change.waiting.size > 0) return;
    this.changes.delete(seq);
    this.write(change.author, { ck: 'ack', seq: change.authorSeq });
  }

  private record(group: string, body: Uint8Array): void {
    const policy = this.history.policies.policyFor(group);
    // The pattern was removed since the sender learned it: a plain group send, sender included.
    let stamped = body;
    if (policy !== null) {
      const message = this.history.record(group, this.codec.decode(body), policy);
      this.bodies.set(message, (stamped = this.codec.encode(message)));
    }
    const workers = this.groups.get(group);
    if (workers === undefined) return;
    const out: PrimaryMessage = { ck: 'group', group, body: stamped };
    for (const worker of workers) this.write(worker, out);
  }

  private recall(from: number, groups: Set<string>, group: string, joinFrom: JoinFrom, seq: number): void {
    const policy = this.history.policies.policyFor(group);
    if (policy === null) {
      this.write(from, { ck: 'recalled', seq, kept: false, recovered: false, bodies: [], position: { epoch: '', offset: 0 } });
      return;
    }
    const { recovered, messages, position } = this.history.join(group, joinFrom, policy);
    add(this.groups, group, from);
    groups.add(group);
    this.write(from, { ck: 'recalled', seq, kept: true, recovered, bodies: messages.map((message) => this.bodies.get(message) ?? this.codec.encode(message)), position });
  }

  private forget(worker: number): void {
    const held = this.held.get(worker);
    if (held === undefined) return;
    for (const group of held.groups) remove(this.groups, group, worker);
    for (const channel of held.claims) remove(this.claims, channel, worker);
    held.groups.clear();
    held.claims.clear();
  }

  private write(worker: number, message: PrimaryMessage): void {
    if (!this.ports.has(worker)) return;
    const messages = this.out.get(worker);
    if (messages === undefined) this.out.set(worker, [message]);
    else messages.push(message);
  }
}

function add(index: Map<string, Set<number>>, key: string, worker: number): void {
  let workers = index.get(key);
  if (workers === undefined) index.set(key, (workers = new Set()));
  workers.add(worker);
}

function remove(index: Map<string, Set<number>>, key: string, worker: number): void {
  const workers = index.get(key);
  if (workers === undefined) return;
  workers.delete(worker);
  if (workers.size === 0) index.delete(key);
}
