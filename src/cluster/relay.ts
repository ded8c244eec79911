// The primary's half of the workers layer: routes group sends and channel sends between worker processes.
import type { PrimaryMessage, WorkerMessage } from './messages';

/** Where the relay writes to one worker: a cluster `Worker` (its `send`), or an in-process fake in tests. */
export interface RelayPort {
  send(message: PrimaryMessage): void;
}

/**
 * Knows, per group, which workers have at least one member (each worker says so on its first join
 * and last leave; never per member), and per named channel which workers read it. A group send costs
 * one IPC message in (from the sender) and one out per other worker with members, whatever the
 * number of members: the bytes are the sender's, forwarded as they came, decoded once per worker.
 *
 * ```ts
 * const relay = new WorkersRelay();
 * const worker = cluster.fork();
 * relay.attach(worker.id, worker);
 * worker.on('message', (message) => { if (isRelayMessage(message)) relay.handle(worker.id, message); });
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

  attach(worker: number, port: RelayPort): void {
    this.ports.set(worker, port);
    this.held.set(worker, { groups: new Set(), claims: new Set() });
  }

  /** The worker exited (or its layer closed): its groups and claims go with it. */
  detach(worker: number): void {
    this.forget(worker);
    this.ports.delete(worker);
    this.held.delete(worker);
  }

  /** Workers attached now. */
  get size(): number {
    return this.ports.size;
  }

  handle(from: number, message: WorkerMessage): void {
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
      case 'flush':
        this.forget(from);
        return;
      case 'bye':
        this.detach(from);
        return;
    }
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
    this.ports.get(worker)?.send(message);
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
