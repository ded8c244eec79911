// Connections that have not finished their request headers: bounded in total and per address, so that a
// flood of them is dropped at once instead of holding a file descriptor each until the server runs out.
import { performance } from 'node:perf_hooks'; // not the global, which is a getter in Node
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../logger';

export interface PendingLimits {
  /** Pending connections plus handshakes still being decided; see `ServerOptions.maxPendingHandshakes`. */
  maxPendingHandshakes: number;
  /** Pending connections from one address; see `ServerOptions.maxPendingHandshakesPerAddress`. */
  maxPendingHandshakesPerAddress: number;
  /** Pending connections younger than this (ms) are a burst whose headers are on the way, not a stall. */
  stallAfter: number;
}

/** How often drops may be logged. */
const DROP_LOG_INTERVAL_MS = 10_000;
/** A burst of fresh connections may go this many times past `maxPendingHandshakes`, no further. */
const BURST_FACTOR = 4;

export class PendingConnections {
  /** Oldest first, with the time each came (ms of performance.now()). */
  private readonly pending = new Map<Duplex, number>();
  private readonly perAddress = new Map<string, number>();
  /** One 'close' listener for every pending socket (`this` is the socket), rather than a closure each. */
  private readonly closed: (this: Duplex) => void;
  private drops = 0;
  private dropsLoggedAt = -Infinity;

  constructor(
    private readonly limits: PendingLimits,
    private readonly logger: Logger,
  ) {
    const pending = this;
    this.closed = function (this: Duplex) {
      pending.done(this);
    };
  }

  /**
   * A new TCP connection: counted until `done()`, or closed at once past the limits. `handshakes`:
   * upgrades whose headers are in but whose handshake is still being decided; they count in the total.
   */
  admit(socket: Socket, handshakes: number): void {
    // Read now: the address is cached on the socket, so done() finds it even after a reset.
    const address = socket.remoteAddress ?? '';
    const fromAddress = this.perAddress.get(address) ?? 0;
    const { maxPendingHandshakes, maxPendingHandshakesPerAddress, stallAfter } = this.limits;
    const now = performance.now();
    const full = this.pending.size + handshakes >= maxPendingHandshakes;
    if (full || fromAddress >= maxPendingHandshakesPerAddress) {
      // Connections accepted together in one burst are all pending until their headers are read, a turn
      // later: only when the oldest has waited long enough is this a stall, and the newcomer is dropped.
      if (this.pending.size >= BURST_FACTOR * maxPendingHandshakes || now - this.oldest(now) >= stallAfter) {
        // Unanswered: an answer would cost a write to a client that is, most likely, not reading.
        socket.destroy();
        this.dropped(full, address, handshakes, now);
        return;
      }
    }
    this.pending.set(socket, now);
    this.perAddress.set(address, fromAddress + 1);
    socket.on('close', this.closed);
  }

  /** The connection's first request or upgrade arrived, or it closed before: no longer pending. */
  done(socket: Duplex): void {
    if (!this.pending.delete(socket)) return;
    socket.removeListener('close', this.closed);
    const address = (socket as Socket).remoteAddress ?? '';
    const count = (this.perAddress.get(address) ?? 1) - 1;
    if (count <= 0) this.perAddress.delete(address);
    else this.perAddress.set(address, count);
  }

  /** When the oldest pending connection came (`now` when there is none). */
  private oldest(now: number): number {
    for (const since of this.pending.values()) return since;
    return now;
  }

  /** Counts drops, logging them at most every DROP_LOG_INTERVAL_MS: a flood must not become a log flood. */
  private dropped(full: boolean, address: string, handshakes: number, now: number): void {
    this.drops++;
    if (now - this.dropsLoggedAt < DROP_LOG_INTERVAL_MS) return;
    this.logger.warn(
      {
        dropped: this.drops,
        pending: this.pending.size,
        handshakes,
        client: address,
        limit: full ? 'maxPendingHandshakes' : 'maxPendingHandshakesPerAddress',
      },
      'connections dropped: too many unfinished handshakes',
    );
    this.drops = 0;
    this.dropsLoggedAt = now;
  }
}
