// What the server counts as it works: plain integers, bumped where the work happens and read by /metrics (src/metrics/).

/**
 * One per server, shared by its transports through their host. The per-frame counts are a field
 * increment each; handshake and disconnect counts, per connection, are one map update each (keyed by an
 * HTTP status or a close code, both bounded sets). Nothing here logs, times or allocates per message.
 */
export class ServerStats {
  /** Data frames (messages) read from clients. */
  framesReceived = 0;
  /** Data frames written to client sockets (counted when the outbox hands them to the socket). */
  framesSent = 0;
  /** Sockets closed with 1013 for reading too slowly (slowReaderPolicy 'close'). */
  slowReaderCloses = 0;
  /** WebSocket handshakes answered, by HTTP status: 101 accepted, anything else refused. */
  readonly handshakes = new Map<number, number>();
  /** Accepted sockets that ended, by close code. */
  readonly disconnects = new Map<number, number>();

  handshake(status: number): void {
    this.handshakes.set(status, (this.handshakes.get(status) ?? 0) + 1);
  }

  disconnect(code: number): void {
    this.disconnects.set(code, (this.disconnects.get(code) ?? 0) + 1);
  }
}
