// An in-process stand-in for node:cluster's IPC: a WorkersRelay and the endpoints of several "workers".
import type { PrimaryBatch, PrimaryMessage, WorkerMessage } from '../../src/cluster/messages';
import { WorkersRelay } from '../../src/cluster/relay';
import type { RelayEndpoint } from '../../src/layers/workers';

/**
 * Each direction is a FIFO pipe delivered on a later turn (setImmediate), and every batch is
 * structured-cloned, as `serialization: 'advanced'` does: nothing is shared between "processes".
 * Records what each side wrote (batches are IPC messages; their contents, flattened), to check the relay's costs.
 */
export class FakeCluster {
  readonly relay = new WorkersRelay();
  /** Messages the workers wrote to the primary, and the primary to the workers, flattened out of their batches. */
  readonly toPrimary: WorkerMessage[] = [];
  readonly toWorkers: Array<{ worker: number; message: PrimaryMessage }> = [];
  /** IPC messages (batches) written each way. */
  ipcToPrimary = 0;
  readonly ipcToWorker = new Map<number, number>();
  private nextId = 1;
  private readonly disconnected = new Set<number>();
  private readonly onDisconnect = new Map<number, () => void>();

  /** A new worker's endpoint and id, attached to the relay. */
  connect(): { endpoint: RelayEndpoint; workerId: number } {
    const workerId = this.nextId++;
    const handlers = new Set<(batch: PrimaryBatch) => void>();
    this.relay.attach(workerId, {
      send: (batch) => {
        this.ipcToWorker.set(workerId, (this.ipcToWorker.get(workerId) ?? 0) + 1);
        for (const message of batch.messages) this.toWorkers.push({ worker: workerId, message });
        const copy = structuredClone(batch);
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
      send: (batch) => {
        this.ipcToPrimary++;
        this.toPrimary.push(...batch.messages);
        const copy = structuredClone(batch);
        setImmediate(() => this.relay.handle(workerId, copy));
      },
      subscribe: (handler, disconnected) => {
        handlers.add(handler);
        this.onDisconnect.set(workerId, disconnected);
        return () => {
          handlers.delete(handler);
          this.onDisconnect.delete(workerId);
        };
      },
    };
    return { endpoint, workerId };
  }

  /** Forgets what was recorded so far. */
  resetCounts(): void {
    this.toPrimary.length = 0;
    this.toWorkers.length = 0;
    this.ipcToPrimary = 0;
    this.ipcToWorker.clear();
  }

  /** The primary is gone for this worker: its endpoint reports disconnected. */
  disconnect(workerId: number): void {
    this.disconnected.add(workerId);
    this.relay.detach(workerId);
    this.onDisconnect.get(workerId)?.();
  }
}
