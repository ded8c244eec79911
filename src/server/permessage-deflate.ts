// permessage-deflate (RFC 7692) as channelkit speaks it: the offer a server accepts, and the settings its frames
// are compressed with. The frames themselves are built in protocol.ts (FrameCache), once per payload.
//
// The server always answers with `server_no_context_takeover`: each message it sends is compressed on its
// own, so one compressed frame is valid for every member of a group send, whatever each socket sent before.
// That costs some ratio next to a per-socket context (repeats across messages are not found) and saves a
// zlib stream per socket (about 260 KiB each at zlib's defaults) and one compression per member.
import type { IncomingMessage } from 'node:http';
import { WebSocket } from 'ws';

/** `perMessageDeflate` in the server's options; every field optional. */
export interface PerMessageDeflateOptions {
  /**
   * Payloads smaller than this many bytes (UTF-8 for text) go uncompressed: compressing a few hundred bytes
   * saves little and costs each client an inflate. Default 1024 (as ws and Socket.IO).
   */
  threshold?: number;
  /** zlib compression level, 1 (fastest) to 9 (smallest). Paid once per distinct payload, not per member. Default 6. */
  level?: number;
  /** zlib memLevel, 1-9: memory for the compressor's hash (freed after each payload). Default 8. */
  memLevel?: number;
  /**
   * Answer with `client_no_context_takeover` (RFC 7692 lets a server add it to any offer): the client then
   * compresses each message on its own, and the server releases its inflate stream after each client message
   * instead of keeping its zlib state (16 KiB, bench/README.md) per socket that has ever sent one. The price: one inflate stream
   * set up per compressed client message, and a worse ratio on the client's side. Default true.
   */
  clientNoContextTakeover?: boolean;
}

/** The settings in force, defaults applied once. */
export interface DeflateSettings {
  readonly threshold: number;
  readonly level: number;
  readonly memLevel: number;
  readonly clientNoContextTakeover: boolean;
}

export const DEFLATE_DEFAULTS: DeflateSettings = { threshold: 1024, level: 6, memLevel: 8, clientNoContextTakeover: true };

/** The server's `perMessageDeflate` option resolved: null when off (the default). Bad values throw. */
export function deflateSettings(option: boolean | PerMessageDeflateOptions | undefined): DeflateSettings | null {
  if (option === undefined || option === false) return null;
  const settings = { ...DEFLATE_DEFAULTS };
  if (option !== true) {
    for (const [key, value] of Object.entries(option)) {
      if (value !== undefined) (settings as Record<string, unknown>)[key] = value;
    }
  }
  const { threshold, level, memLevel, clientNoContextTakeover } = settings;
  if (!(threshold >= 0)) throw new RangeError(`perMessageDeflate.threshold: ${threshold} is not a byte count; expected a number >= 0`);
  if (!Number.isInteger(level) || level < 1 || level > 9) throw new RangeError(`perMessageDeflate.level: ${level}; expected an integer from 1 to 9`);
  if (!Number.isInteger(memLevel) || memLevel < 1 || memLevel > 9) throw new RangeError(`perMessageDeflate.memLevel: ${memLevel}; expected an integer from 1 to 9`);
  if (typeof clientNoContextTakeover !== 'boolean') throw new TypeError('perMessageDeflate.clientNoContextTakeover: expected true or false');
  return settings;
}

/** What ws's WebSocketServer is given: ws negotiates, and inflates what clients send (its sender is not used for data). */
export function upgraderDeflateOptions(settings: DeflateSettings): { serverNoContextTakeover: true; clientNoContextTakeover: boolean } {
  return { serverNoContextTakeover: true, clientNoContextTakeover: settings.clientNoContextTakeover };
}

type Params = Record<string, (string | true)[]>;
interface WsNegotiation {
  extension: { parse(header: string): Record<string, Params[]>; format(extensions: Record<string, Params[]>): string };
  PerMessageDeflate: new (options: object) => { accept(offers: Params[]): Record<string, number | true> };
}
/** ws's own header parser and negotiator (exported by ws, not typed by @types/ws): the 101 is then exactly what ws writes. */
const ws = WebSocket as unknown as WsNegotiation;

const EXTENSIONS = 'sec-websocket-extensions';
const NAME = 'permessage-deflate';

/**
 * Narrows the request's extension offers to the first permessage-deflate offer this server accepts, before
 * ws reads them, and returns the window (bits) the server may use for it; 0 when none is acceptable (or none
 * offered), and then the header is removed. RFC 7692 §5: a server declines an offer it cannot accept (unknown
 * or invalid parameter, a window it does not support) and goes on without the extension; ws would answer 400
 * instead, after the consumer has already accepted.
 */
export function narrowOffer(req: IncomingMessage, settings: DeflateSettings): number {
  const header = req.headers[EXTENSIONS];
  if (header === undefined) return 0;
  let offers: Params[] = [];
  try {
    offers = ws.extension.parse(header)[NAME] ?? [];
  } catch {
    // A malformed header: declined as a whole.
  }
  for (const offer of offers) {
    // Formatted before ws's accept() normalizes the offer in place.
    const text = ws.extension.format({ [NAME]: [offer] });
    try {
      const accepted = new ws.PerMessageDeflate({ ...upgraderDeflateOptions(settings), isServer: true }).accept([offer]);
      req.headers[EXTENSIONS] = text;
      const bits = accepted.server_max_window_bits;
      return typeof bits === 'number' ? bits : 15;
    } catch {
      // Declined; the next offer may do.
    }
  }
  delete req.headers[EXTENSIONS];
  return 0;
}
