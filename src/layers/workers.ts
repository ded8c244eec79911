// The channel layer of `channelkit serve --workers N` without Redis: groups span the workers through the primary.
import { randomBytes } from 'node:crypto';
import type { PrimaryBatch, PrimaryMessage, WorkerBatch, WorkerMessage } from '../cluster/messages';
import { type Codec, MsgpackCodec } from './codec';
import {
  ChannelFull,
  type ChannelLayer,
  LAYER_DEFAULTS,
  type LayerHealth,
  type LayerMessage,
  type LayerOptions,
  LayerUnavailable,
  type MessageListener,
  checkChannel,
  checkGroupSend,
  checkMembership,
  checkOpen,
  checkSend,
  isProcessLocal,
  nonLocalName,
  validateChannelName,
  validateGroupName,
} from './layer';
import { type HistoryPolicy, HistoryNotKept, type JoinFrom, type JoinResult, checkHistoryPattern, validateJoinFrom, validatePolicy } from './history';
import { HistoryPolicies } from './history-policies';
import { LocalChannels } from './local';
import type { LayerStats } from './stats';
import { PRESENCE_DEFAULTS, type PresenceMember, presenceMember } from './presence';
import { PresenceBatcher } from './presence-batcher';

/** This worker's end of the IPC channel to the primary: `process` in a cluster worker, a fake in tests. */
export interface RelayEndpoint {
  /** False once the channel to the primary is gone: sends then fail with LayerUnavailable. */
  readonly connected: boolean;
  send(batch: WorkerBatch): void;
  /**
   * Calls `handler` with each relay batch from the primary, and `disconnected` once when the channel
   * closes (nothing will answer then); returns the function that stops both.
   */
  subscribe(handler: (batch: PrimaryBatch) => void, disconnected: () => void): () => void;
}

export interface WorkersLayerOptions extends LayerOptions {
  /** The link to the primary's WorkersRelay. Required. */
  endpoint: RelayEndpoint;
  /** This worker's id as the primary knows it (`cluster.worker.id`): other workers' sends name it. Required. */
  workerId: number;
}

/** `<prefix>.w<worker>-<random>!<n>`: the worker id is read back from the name, so no registry is needed. */
const OWNER = /\.w(\d+)-[0-9a-f]+!$/;

/**
 * Local delivery is LocalChannels, as in the in-memory layer; the primary only moves bytes between
 * workers (the Phoenix.PubSub adapter shape). A group send is encoded once here, delivered to local
 * members, and handed to the primary in one IPC message, which forwards it in one message to each
 * other worker that has members; each decodes it once for all its members. What the layer sends in
 * one synchronous run (a loop of group sends) leaves as one batch, so those are upper bounds. A send to another
 * worker's channel goes through the primary to that worker; the sender cannot hear that it was full
 * there, so that worker counts it in `skippedFull`, as on Redis.
 *
 * Named channels (without '!') belong to the workers that `receive` or `listen` on them: a send
 * delivers in this worker when it reads the channel, else goes to every worker that does, else is
 * dropped (as the Redis pub/sub layer does).
 *
 * `groupAdd` resolves once the primary knows this worker has the group, so a group send made after
 * it from any worker reaches the new member.
 *
 * History lives in the primary, the one sequencer of offsets (see WorkersRelay): a group send to a
 * history group goes there and comes back stamped to every worker with members, this one included;
 * `groupJoin` is one round trip that brings the replay and makes this worker a member, and the member
 * is added here when the answer is read, so its first live message is the one after the replay. Each
 * worker mirrors the setHistory table (sent on `hello`, then each change) to know which sends go there.
 *
 * Presence is one table in the primary too: a join is one round trip whose answer is the snapshot, and
 * every change comes back from the primary (this worker's own included) into the PresenceBatcher,
 * which merges them into diffs for the members here, as with Redis events.
 */
export class WorkersChannelLayer implements ChannelLayer {
  private readonly local: LocalChannels;
  private readonly codec: Codec = new MsgpackCodec();
  private readonly endpoint: RelayEndpoint;
  private readonly id: string;
  /** Named channels this worker reads (claimed at the primary). */
  private readonly claimed = new Set<string>();
  /** Joins the primary has not acknowledged yet, by group, and their resolvers by sequence number. */
  private readonly joining = new Map<string, Promise<void>>();
  private readonly acks = new Map<number, () => void>();
  /** groupJoins waiting for the primary's replay, by sequence number; `recalling` counts them per group. */
  private readonly recalls = new Map<number, { group: string; channel: string; from: JoinFrom; resolve(result: JoinResult): void; reject(error: Error): void }>();
  private readonly recalling = new Map<string, number>();
  /** Presence joins and lists waiting for the primary's `members`, by sequence number. */
  private readonly lists = new Map<number, { resolve(members: PresenceMember[]): void; reject(error: Error): void }>();
  private readonly presenceBatcher: PresenceBatcher;
  /** The setHistory table, mirrored from the primary; known once the answer to `hello` is read. */
  private readonly policies = new HistoryPolicies();
  private policiesKnown = false;
  private readonly policiesLoaded: Promise<void>;
  private policiesArrived!: () => void;
  private recallCount = 0;
  private readonly unsubscribe: () => void;
  /** Messages for the primary from the current synchronous run, written as one batch at its end. */
  private outbox: WorkerMessage[] = [];
  private seq = 0;
  private channels = 0;
  private skipped = 0;
  private closed = false;

  constructor(options: WorkersLayerOptions) {
    const { endpoint, workerId, ...layerOptions } = options;
    this.local = new LocalChannels({ ...LAYER_DEFAULTS, ...layerOptions });
    this.endpoint = endpoint;
    this.id = `w${workerId}-${randomBytes(4).toString('hex')}`;
    const batcher = new PresenceBatcher(layerOptions.presenceInterval ?? PRESENCE_DEFAULTS.presenceInterval, (channel, diff) => this.local.deliver(channel, diff));
    this.presenceBatcher = batcher;
    this.local.stats.presence = {
      get localMembers() {
        return batcher.members;
      },
    };
    this.policiesLoaded = new Promise((resolve) => (this.policiesArrived = resolve));
    this.unsubscribe = endpoint.subscribe(
      (batch) => {
        for (const message of batch.messages) this.onMessage(message);
      },
      () => this.answerPending(),
    );
    if (endpoint.connected) this.post({ ck: 'hello' });
    else this.policiesArrived();
  }

  async send(channel: string, message: LayerMessage): Promise<void> {
    checkSend(this.closed, channel, message);
    this.local.stats.sends++;
    if (isProcessLocal(channel)) {
      const owner = this.ownerOf(channel);
      if (owner === null) return this.deliverHere(channel, message);
      this.relay({ ck: 'send', to: owner, channel, body: this.codec.encode(message) });
      return;
    }
    if (this.claimed.has(channel)) return this.deliverHere(channel, message);
    this.relay({ ck: 'named', channel, body: this.codec.encode(message) });
  }

  receive(channel: string): Promise<LayerMessage> {
    validateChannelName(channel);
    if (!this.closed) this.claim(channel);
    return this.local.receive(channel);
  }

  async newChannel(prefix = 'specific'): Promise<string> {
    const name = `${prefix}.${this.id}!${(++this.channels).toString(36)}`;
    validateChannelName(name);
    return name;
  }

  async groupAdd(group: string, channel: string): Promise<void> {
    checkMembership(this.closed, group, channel);
    if (this.local.groupAdd(group, channel)) return this.join(group);
    // Not the first member: still wait for a join on its way, so the promise means the same thing.
    await this.joining.get(group);
  }

  async groupDiscard(group: string, channel: string): Promise<void> {
    // Leaving works after close: consumers leave their groups on the way out.
    checkMembership(false, group, channel);
    if (this.local.groupDiscard(group, channel)) this.leave(group);
  }

  async groupSend(group: string, message: LayerMessage): Promise<void> {
    checkGroupSend(this.closed, group, message);
    this.local.stats.groupSends++;
    // Only a new worker's first sends wait (for the table): which of them keep history.
    if (!this.policiesKnown) await this.policiesLoaded;
    const body = this.codec.encode(message);
    if (this.policies.size > 0 && this.policies.policyFor(group) !== null) {
      this.relay({ ck: 'record', group, body });
      return;
    }
    if (this.local.hasGroup(group)) this.deliverToGroup(group, body);
    this.relay({ ck: 'group', group, body });
  }

  async listen(channel: string, listener: MessageListener): Promise<void> {
    checkChannel(this.closed, channel);
    this.local.listen(channel, listener);
    this.claim(channel);
  }

  unlisten(channel: string): void {
    this.local.unlisten(channel);
  }

  async flush(): Promise<void> {
    this.local.flush();
    this.claimed.clear();
    this.presenceBatcher.clear();
    if (!this.endpoint.connected || this.closed) return;
    // Resolves once the primary has forgotten this worker's groups and members: any process's next read agrees.
    await this.acked((seq) => ({ ck: 'flush', seq }));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    if (this.endpoint.connected) {
      this.outbox.push({ ck: 'bye' });
      this.flushOutbox();
    }
    this.answerPending();
    this.local.close();
  }

  /** Nothing will answer (closed, or the primary is gone): no caller waits forever. */
  private answerPending(): void {
    // A groupAdd keeps its local membership, as on a Redis layer that is down.
    for (const resolve of this.acks.values()) resolve();
    this.acks.clear();
    for (const recall of this.recalls.values()) recall.reject(new LayerUnavailable('the primary did not answer the join (the layer closed or the primary exited)'));
    this.recalls.clear();
    this.recalling.clear();
    for (const list of this.lists.values()) list.reject(new LayerUnavailable('the primary did not answer about presence (the layer closed or the primary exited)'));
    this.lists.clear();
    // The sends that waited for the table go on; over a closed channel they fail with LayerUnavailable.
    this.policiesArrived();
  }

  get stats(): LayerStats {
    return this.local.stats;
  }

  get skippedFull(): number {
    return this.skipped + this.presenceBatcher.skipped;
  }

  // History and recovery: in the primary (see the class comment).

  async setHistory(pattern: string, policy: HistoryPolicy | null): Promise<void> {
    checkOpen(this.closed);
    checkHistoryPattern(pattern);
    if (policy) validatePolicy(policy);
    this.policies.set(pattern, policy);
    await this.acked((seq) => ({ ck: 'policy', pattern, policy, seq }));
  }

  groupJoin(group: string, channel: string, from: JoinFrom): Promise<JoinResult> {
    try {
      checkMembership(this.closed, group, channel);
      validateJoinFrom(from);
    } catch (error) {
      return Promise.reject(error);
    }
    const seq = ++this.seq;
    return new Promise<JoinResult>((resolve, reject) => {
      try {
        this.relay({ ck: 'recall', group, from, seq });
      } catch (error) {
        reject(error);
        return;
      }
      this.recalls.set(seq, { group, channel, from, resolve, reject });
      this.recallCount++;
      this.recalling.set(group, (this.recalling.get(group) ?? 0) + 1);
    });
  }

  /** Joins answered by the primary (one each: the primary keeps the history, there is no cache here). */
  get historyReads(): number {
    return this.recallCount;
  }

  // Presence: one table in the primary (PresenceTable); diffs merged here, per group, by the batcher.

  readonly supportsPresence = true;

  async presenceJoin(group: string, channel: string, given: PresenceMember): Promise<PresenceMember[]> {
    checkMembership(this.closed, group, channel);
    const member = presenceMember(given);
    const previous = this.presenceBatcher.watch(group, channel, member);
    this.presenceBatcher.beginSnapshot(group, member.id);
    try {
      if (previous && previous.id !== member.id) this.relay({ ck: 'pleave', group, id: previous.id });
      // The pipe is ordered: a leave of this channel made while the join is on its way reaches the primary after it.
      return await this.ask((seq) => ({ ck: 'pjoin', group, member, seq }));
    } catch (error) {
      if (this.presenceBatcher.membersOf(group).get(channel) === member) this.presenceBatcher.unwatch(group, channel);
      throw error;
    } finally {
      this.presenceBatcher.endSnapshot(group, member.id);
    }
  }

  async presenceLeave(group: string, channel: string): Promise<void> {
    // Leaving works after close: consumers leave on the way out (the primary forgets a closed worker's members itself).
    const member = this.presenceBatcher.unwatch(group, channel);
    if (member && !this.closed && this.endpoint.connected) this.post({ ck: 'pleave', group, id: member.id });
  }

  async presence(group: string): Promise<PresenceMember[]> {
    checkOpen(this.closed);
    validateGroupName(group);
    return this.ask((seq) => ({ ck: 'plist', group, seq }));
  }

  async presenceCount(group: string): Promise<number> {
    return (await this.presence(group)).length;
  }

  /** Sends `message` (numbered) to the primary; resolves on its `ack`, or when nothing will answer. */
  private acked(message: (seq: number) => WorkerMessage): Promise<void> {
    const seq = ++this.seq;
    const answered = new Promise<void>((resolve) => this.acks.set(seq, resolve));
    try {
      this.relay(message(seq));
    } catch (error) {
      this.acks.delete(seq);
      return Promise.reject(error);
    }
    return answered;
  }

  /** Sends `message` (numbered) to the primary; resolves with the members it answers. */
  private ask(message: (seq: number) => WorkerMessage): Promise<PresenceMember[]> {
    const seq = ++this.seq;
    return new Promise<PresenceMember[]>((resolve, reject) => {
      try {
        this.relay(message(seq));
      } catch (error) {
        reject(error);
        return;
      }
      this.lists.set(seq, { resolve, reject });
    });
  }

  health(): LayerHealth {
    if (this.closed) return { state: 'closed', backend: 'workers' };
    if (!this.endpoint.connected) return { state: 'degraded', backend: 'workers', detail: 'the IPC channel to the primary is closed' };
    return { state: 'up', backend: 'workers' };
  }

  private onMessage(message: PrimaryMessage): void {
    switch (message.ck) {
      case 'group':
        if (this.local.hasGroup(message.group)) this.deliverToGroup(message.group, message.body);
        // No member left here (they expired): tell the primary, so it stops sending this group here.
        else this.leave(message.group);
        return;
      case 'send':
        if (!this.local.deliver(message.channel, this.codec.decode(message.body))) this.skipped++;
        return;
      case 'ack': {
        const resolve = this.acks.get(message.seq);
        this.acks.delete(message.seq);
        resolve?.();
        return;
      }
      case 'recalled':
        this.recalled(message);
        return;
      case 'policies':
        this.policies.replace(message.table);
        this.policiesKnown = true;
        this.policiesArrived();
        return;
      case 'members': {
        const list = this.lists.get(message.seq);
        this.lists.delete(message.seq);
        list?.resolve(message.members);
        return;
      }
      case 'pjoined':
        this.presenceBatcher.joined(message.group, message.member);
        return;
      case 'pleft':
        this.presenceBatcher.left(message.group, message.member);
        return;
      case 'policy':
        this.policies.set(message.pattern, message.policy);
        if (this.endpoint.connected && !this.closed) this.post({ ck: 'applied', seq: message.seq });
        return;
    }
  }

  /** The primary's answer to a groupJoin: the member is added now, before any later message is read. */
  private recalled(message: Extract<PrimaryMessage, { ck: 'recalled' }>): void {
    const recall = this.recalls.get(message.seq);
    if (recall === undefined) return;
    this.recalls.delete(message.seq);
    const left = (this.recalling.get(recall.group) ?? 1) - 1;
    if (left > 0) this.recalling.set(recall.group, left);
    else this.recalling.delete(recall.group);
    if (!message.kept) {
      recall.reject(new HistoryNotKept(recall.group));
      return;
    }
    this.local.groupAdd(recall.group, recall.channel);
    this.local.stats.countJoin('since' in recall.from, message.recovered);
    recall.resolve({ recovered: message.recovered, messages: message.bodies.map((body) => this.codec.decode(body)), position: message.position });
  }

  /** One decode for every local member; the members share the decoded object, as in the in-memory layer. */
  private deliverToGroup(group: string, body: Uint8Array): void {
    this.skipped += this.local.deliverToGroup(group, this.codec.decode(body));
    if (!this.local.hasGroup(group)) this.leave(group);
  }

  private deliverHere(channel: string, message: LayerMessage): void {
    // Through the codec, as on every other path: no receiver sees the sender's later mutations.
    if (!this.local.deliver(channel, this.codec.decode(this.codec.encode(message)))) throw new ChannelFull(channel);
  }

  /** The worker owning a process-local channel: null for this worker (or a name this layer did not make). */
  private ownerOf(channel: string): number | null {
    const base = nonLocalName(channel);
    if (base.endsWith(`.${this.id}!`)) return null;
    const match = OWNER.exec(base);
    return match === null ? null : Number(match[1]);
  }

  private join(group: string): Promise<void> {
    const seq = ++this.seq;
    const joined = new Promise<void>((resolve) => this.acks.set(seq, resolve));
    this.joining.set(group, joined);
    const done = () => {
      if (this.joining.get(group) === joined) this.joining.delete(group);
    };
    void joined.then(done);
    try {
      this.relay({ ck: 'join', group, seq });
    } catch (error) {
      this.acks.delete(seq);
      done();
      // The membership stays: local group sends still reach it, as on a Redis layer that is down.
      return Promise.reject(error);
    }
    return joined;
  }

  private leave(group: string): void {
    // A join on its way makes this worker a member again at the primary: a leave now would undo it.
    if (this.recalling.has(group)) return;
    if (!this.closed && this.endpoint.connected) this.post({ ck: 'leave', group });
  }

  /** Named channels are read where they are claimed; process-local ones are always read by their owner. */
  private claim(channel: string): void {
    if (isProcessLocal(channel) || this.claimed.has(channel)) return;
    this.claimed.add(channel);
    if (this.endpoint.connected) this.post({ ck: 'claim', channel });
  }

  private relay(message: WorkerMessage): void {
    if (!this.endpoint.connected) throw new LayerUnavailable('the IPC channel to the primary is closed (the primary exited)');
    this.post(message);
  }

  private post(message: WorkerMessage): void {
    if (this.outbox.push(message) === 1) queueMicrotask(this.flushOutbox);
  }

  /** Bound once: one function for every batch, no closure per message. */
  private readonly flushOutbox = (): void => {
    if (this.outbox.length === 0) return;
    const messages = this.outbox;
    this.outbox = [];
    // Lost with the channel if the primary is gone: at most once, and the worker exits with it.
    if (this.endpoint.connected) this.endpoint.send({ ck: 'batch', messages });
  };
}
