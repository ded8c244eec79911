// An in-process stand-in for node:cluster's IPC: a WorkersRelay and the endpoints of several "workers".
import type { PrimaryMessage, WorkerMessage } from '../../src/cluster/messages';
import { WorkersRelay } from '../../src/cluster/relay';
import type { RelayEndpoint } from '../../src/layers/workers';

/**
 * Each direction is a FIFO pipe delivered on a later turn (setImmediate), and every message is
 * structured-cloned, as `serialization: 'advanced'` does: nothing is shared between "processes".
 * Counts the messages each side wrote, to check the relay's costs.
 */
export class FakeCluster {
  readonly relay = new WorkersRelay();
  /** Messages the workers wrote to the primary, and the primary to the workers. */
  readonly toPrimary: WorkerMessage[] = [];
  readonly toWorkers: Array<{ worker: number; message: PrimaryMessage }> = [];
  private nextId = 1;
  private readonly disconnected = new Set<number>();

  /** A new worker's endpoint and id, attached to the relay. */
  connect(): { endpoint: RelayEndpoint; workerId: number } {
    const workerId = this.nextId++;
    const handlers = new Set<(message: PrimaryMessage) => void>();
    this.relay.attach(workerId, {
      send: (message) => {
        this.toWorkers.push({ worker: workerId, message });
        const copy = structuredClone(message);
        setImmediate(() => {
          for (const handler of handlers) handler(copy);
        });
      },
    });
    const cluster = this;
    const endpoint: RelayEndpoint = {
      get connected() {
        return !cluster.disconnected.has(workerId);
      },
      send: (message) => {
        this.toPrimary.push(message);
        const copy = structuredClone(message);
        setImmediate(() => this.relay.handle(workerId, copy));
      },
      subscribe(handler) {
        handlers.add(handler);
        return () => handlers.delete(handler);
      },
    };
    return { endpoint, workerId };
  }

  /** The primary is gone for this worker: its endpoint reports disconnected. */
  disconnect(workerId: number): void {
    this.disconnected.add(workerId);
    this.relay.detach(workerId);
  }
}
