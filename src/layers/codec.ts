// Message bodies on the wire: msgpack, as channels_redis 4 writes them, so Django processes read ours.
import { Decoder, Encoder } from '@msgpack/msgpack';
import { InvalidToken, Sealer } from './fernet';
import { InvalidMessage, type LayerMessage, validateMessage } from './layer';

/** Turns layer messages into bytes and back. A layer encodes once per send, decodes once per process. */
export interface Codec {
  encode(message: LayerMessage): Uint8Array;
  decode(bytes: Uint8Array): LayerMessage;
}

/** Distinct message types a codec keeps one string of; past this, new types are left as decoded. */
const INTERNED_TYPES = 1000;
/** Longer types are not kept: no handler name is that long. */
const INTERNED_TYPE_LENGTH = 100;

/**
 * msgpack with strings as str and bytes as bin (Python's `use_bin_type=True`); maps decode to plain
 * objects, and a `__proto__` key is refused by the decoder, so no message can pollute prototypes.
 */
export class MsgpackCodec implements Codec {
  // One encoder/decoder per codec: they reuse their buffers, which matters on the publish path.
  private readonly encoder = new Encoder({ ignoreUndefined: true });
  private readonly decoder = new Decoder();
  /**
   * One string per message type: every member of a group send finds its handler by the type, and
   * comparing the same string is a pointer check where a freshly decoded one is compared by content.
   */
  private readonly types = new Map<string, string>();

  encode(message: LayerMessage): Uint8Array {
    try {
      return this.encoder.encode(message);
    } catch (error) {
      throw new InvalidMessage(`cannot be encoded (${(error as Error).message})`);
    }
  }

  decode(bytes: Uint8Array): LayerMessage {
    const message = this.decoder.decode(bytes);
    validateMessage(message);
    if (typeof message.type === 'string') message.type = this.internType(message.type);
    return message;
  }

  private internType(type: string): string {
    const known = this.types.get(type);
    if (known !== undefined) return known;
    if (this.types.size < INTERNED_TYPES && type.length <= INTERNED_TYPE_LENGTH) this.types.set(type, type);
    return type;
  }
}

/**
 * The field of a sealed record: a msgpack map `{ __sealed__: <token>, ...clear fields }` for payloads
 * that Redis itself extends (history's Lua appends `epoch` and `offset`, and Lua cannot encrypt).
 * Only metadata stays clear; the message, text included, is the token.
 */
export const SEALED_FIELD = '__sealed__';

/** A Fernet token's first byte: base64url of version 0x80 starts with 'g'; no msgpack map does. */
const TOKEN_START = 0x67;

/**
 * channels_redis's serializer with `symmetric_encryption_keys`: each body is a Fernet token of the
 * msgpack bytes (the first key seals, every key opens). `decode` also opens sealed records (see
 * SEALED_FIELD), whose clear fields it puts on the opened message. Anything else, plaintext
 * msgpack included, throws (InvalidToken), which the layers log (rate-limited), count and drop.
 */
export class SealedCodec implements Codec {
  private readonly recordDecoder = new Decoder();

  /** `ttl`: seconds a token stays valid (channels_redis: none on pub/sub, expiry + 10 on its core layer). */
  constructor(
    readonly sealer: Sealer,
    private readonly inner: Codec = new MsgpackCodec(),
    private readonly ttl?: number,
  ) {}

  encode(message: LayerMessage): Uint8Array {
    return this.sealer.seal(this.inner.encode(message));
  }

  decode(bytes: Uint8Array): LayerMessage {
    if (bytes[0] === TOKEN_START) return this.inner.decode(this.sealer.open(bytes, this.ttl));
    return this.openRecord(bytes);
  }

  /** `{ __sealed__: token, ...clear }` to `{ ...open(token), ...clear }`. */
  private openRecord(bytes: Uint8Array): LayerMessage {
    let record: unknown;
    try {
      record = this.recordDecoder.decode(bytes);
    } catch {
      throw new InvalidToken('format', 'not a Fernet token');
    }
    const token = (record as Record<string, unknown> | null)?.[SEALED_FIELD];
    if (typeof token !== 'string' && !(token instanceof Uint8Array)) {
      throw new InvalidToken('format', 'a plaintext message where keys are set');
    }
    const message = this.inner.decode(this.sealer.open(token, this.ttl));
    for (const [field, value] of Object.entries(record as Record<string, unknown>)) {
      if (field !== SEALED_FIELD) message[field] = value;
    }
    return message;
  }
}
/** The codec for a layer's options: msgpack, sealed when keys are given (an empty list means none). */
export function layerCodec(keys: ReadonlyArray<string> | undefined): Codec {
  return keys && keys.length > 0 ? new SealedCodec(new Sealer(keys)) : new MsgpackCodec();
}
