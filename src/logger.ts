// The logger type the framework writes to (pino's), and the default instance for LOG_LEVEL.
import pino from 'pino';

export type Logger = pino.Logger;

/** A pino logger at `LOG_LEVEL` (default 'info'), or silent in tests unless LOG_LEVEL is set. */
export function createLogger(level = process.env.LOG_LEVEL ?? (process.env.JEST_WORKER_ID ? 'silent' : 'info')): Logger {
  return pino({ level, base: { pid: process.pid }, name: 'channelkit' });
}
