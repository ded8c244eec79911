// The logger type the framework writes to (pino's), and the default instance for LOG_LEVEL.
import pino from 'pino';

export type Logger = pino.Logger;

/**
 * A pino logger at `LOG_LEVEL` (default 'info'), or silent in tests unless LOG_LEVEL is set. It writes
 * stdout synchronously: with pino's default asynchronous destination, a write stuck on a full pipe at
 * exit is lost (a 16 KiB chunk, about 75 disconnect lines of a shutdown). Nothing is logged per message,
 * so the cost is a few writes per connection.
 */
export function createLogger(level = process.env.LOG_LEVEL ?? (process.env.JEST_WORKER_ID ? 'silent' : 'info')): Logger {
  return pino({ level, base: { pid: process.pid }, name: 'channelkit' }, pino.destination({ dest: 1, sync: true }));
}
