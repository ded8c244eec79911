// Capturing what the framework logs, to assert on it.
import { Writable } from 'node:stream';
import pino from 'pino';
import type { Logger } from '../../src';

/** A pino logger writing into memory, at debug so that nothing is filtered out. */
export function memoryLogger(): { logger: Logger; text: () => string; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  const logger = pino({ level: 'debug' }, sink);
  const text = () => chunks.join('');
  return { logger, text, lines: () => text().split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>) };
}
