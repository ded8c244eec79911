// The primary of `channelkit serve --workers N`: forks the workers, relays their layer, restarts crashes, drains on SIGTERM.
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from '../logger';
import { type WorkerBatch, isRelayMessage } from './messages';
import { PrimaryMetrics } from './metrics';
import { WorkersRelay } from './relay';

export interface PrimaryOptions {
  /** Worker processes to keep running. Required. */
  workers: number;
  logger: Logger;
  /** Delay before restarting a crashed worker, doubled per crash in a row. Default 100 ms. */
  restartDelay?: number;
  /** The longest restart delay, so a crash loop retries at this pace without spinning. Default 10 s. */
  maxRestartDelay?: number;
  /** A worker alive this long before it crashed starts the delay over. Default 30 s. */
  stableAfter?: number;
  /** How long SIGTERM waits for the workers to drain before killing them. Default 30 s. */
  shutdownTimeout?: number;
}

/** One worker position: the process in it now, and its crashes in a row (for the backoff). */
interface Slot {
  worker: Worker | null;
  startedAt: number;
  crashes: number;
  /** Has a process in this slot ever listened? If the first never does, the config is wrong: stop. */
  listened: boolean;
  timer?: NodeJS.Timeout;
}

/**
 * Workers share the port through node:cluster (the primary accepts and hands connections round-robin).
 * The primary runs no app code: it forks, relays the workers layer (WorkersRelay), and watches.
 *
 * ```ts
 * if (cluster.isPrimary && workers > 1) return new Primary({ workers, logger }).start();
 * ```
 */
export class Primary {
  private readonly relay = new WorkersRelay();
  /** /metrics in any worker answers the sum over all of them, gathered here. */
  private readonly metrics = new PrimaryMetrics(() => this.slots.flatMap((slot) => (slot.worker ? [slot.worker] : [])));
  private readonly slots: Slot[];
  private readonly options: Required<Omit<PrimaryOptions, 'logger'>>;
  private readonly logger: Logger;
  private stopping = false;
  /** Workers that listened (served); a worker killed by SIGTERM before that exited cleanly enough. */
  private readonly listening = new Set<number>();

  constructor(options: PrimaryOptions) {
    this.options = { restartDelay: 100, maxRestartDelay: 10_000, stableAfter: 30_000, shutdownTimeout: 30_000, ...options };
    this.logger = options.logger;
    this.slots = Array.from({ length: options.workers }, () => ({ worker: null, startedAt: 0, crashes: 0, listened: false }));
  }

  /** Forks every worker and handles SIGTERM/SIGINT (drain all, then exit 0). */
  start(): void {
    cluster.setupPrimary({
      // Bytes stay bytes over IPC (JSON would make a Uint8Array an array of numbers).
      serialization: 'advanced',
      execArgv: workerExecArgv(),
    });
    this.logger.info({ workers: this.slots.length }, 'primary started');
    for (const slot of this.slots) this.fork(slot);
    process.on('SIGTERM', () => void this.stop('SIGTERM'));
    process.on('SIGINT', () => void this.stop('SIGINT'));
  }

  private fork(slot: Slot): void {
    slot.timer = undefined;
    const worker = cluster.fork();
    slot.worker = worker;
    slot.startedAt = Date.now();
    this.relay.attach(worker.id, {
      send(message) {
        // A worker that just died: the message is dropped (at most once); 'exit' detaches it next.
        if (worker.isConnected()) worker.send(message, undefined, swallow);
      },
    });
    worker.on('message', (message: unknown) => {
      if (isRelayMessage(message)) this.relay.handle(worker.id, message as WorkerBatch);
      else this.metrics.handle(worker, message);
    });
    worker.once('listening', (address) => {
      slot.listened = true;
      this.listening.add(worker.id);
      this.logger.info({ worker: worker.id, pid: worker.process.pid, port: address.port }, 'worker listening');
      if (this.slots.every((s) => s.worker?.isConnected() && s.listened)) {
        this.logger.info({ workers: this.slots.length, port: address.port }, 'all workers listening');
      }
    });
    worker.once('exit', (code, signal) => this.exited(slot, worker, code, signal));
  }

  private exited(slot: Slot, worker: Worker, code: number | null, signal: string | null): void {
    this.relay.detach(worker.id);
    if (slot.worker === worker) slot.worker = null;
    if (this.stopping) return;
    this.listening.delete(worker.id);
    const fields = { worker: worker.id, pid: worker.process.pid, code, signal };
    if (!slot.listened) {
      // The first process of this slot never served: a bad routing module, a port in use. Restarting would loop.
      this.logger.error(fields, 'worker exited before it listened; stopping (see its error above)');
      void this.stop('worker failed to start', 1);
      return;
    }
    const { crashes, delay } = restartBackoff(slot.crashes, Date.now() - slot.startedAt, this.options);
    slot.crashes = crashes;
    this.logger.error({ ...fields, crashesInARow: slot.crashes, restartInMs: delay }, 'worker died; restarting it');
    slot.timer = setTimeout(() => this.fork(slot), delay);
  }

  /** Drains: SIGTERM to every worker (each closes its clients with 1001 and exits), then exits. */
  private async stop(reason: string, failed = 0): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.logger.info({ reason }, 'shutting down the workers');
    for (const slot of this.slots) clearTimeout(slot.timer);
    const running = this.slots.map((slot) => slot.worker).filter((worker): worker is Worker => worker !== null);
    // A worker still starting has no signal handler yet: SIGTERM ends it by the signal, which is fine.
    const codes = running.map(
      (worker) =>
        new Promise<number | null>((resolve) =>
          worker.once('exit', (code, signal) => resolve(code ?? (signal === 'SIGTERM' && !this.listening.has(worker.id) ? 0 : null))),
        ),
    );
    // A signal, not worker.kill(): kill() disconnects first, which would close the shared listener
    // and wait for sockets instead of running the worker's drain (1001 to every client).
    for (const worker of running) worker.process.kill('SIGTERM');
    const timer = setTimeout(() => {
      this.logger.error({ timeoutMs: this.options.shutdownTimeout }, 'workers did not exit in time; killing them');
      for (const worker of running) worker.process.kill('SIGKILL');
    }, this.options.shutdownTimeout);
    const exitCodes = await Promise.all(codes);
    clearTimeout(timer);
    this.relay.close();
    const ok = failed === 0 && exitCodes.every((code) => code === 0);
    if (!ok) this.logger.error({ exitCodes }, 'a worker did not exit cleanly');
    this.logger.info({ exitCodes }, 'closed');
    this.logger.flush(() => process.exit(ok ? 0 : 1));
  }
}

/**
 * When to restart a worker that died after `livedMs`, its slot having crashed `crashesBefore` times in a
 * row: `restartDelay`, doubled per crash in a row, at most `maxRestartDelay`; a worker that lived
 * `stableAfter` starts the count over.
 */
export function restartBackoff(
  crashesBefore: number,
  livedMs: number,
  options: Pick<Required<PrimaryOptions>, 'restartDelay' | 'maxRestartDelay' | 'stableAfter'>,
): { crashes: number; delay: number } {
  const crashes = livedMs >= options.stableAfter ? 1 : crashesBefore + 1;
  return { crashes, delay: Math.min(options.maxRestartDelay, options.restartDelay * 2 ** (crashes - 1)) };
}

function swallow(): void {
  // The worker's channel closed under this send; its 'exit' follows.
}

/**
 * The Node flags a worker starts with: the primary's, plus ts-node when the CLI runs as TypeScript
 * (`npm start` runs `ts-node src/cli.ts`, which leaves no flag in execArgv for the fork to inherit).
 */
function workerExecArgv(): string[] {
  const argv = [...process.execArgv];
  const typescript = __filename.endsWith('.ts');
  if (typescript && !argv.some((flag) => flag.includes('ts-node'))) argv.push('-r', 'ts-node/register/transpile-only');
  return argv;
}
