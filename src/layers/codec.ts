// Message bodies on the wire: msgpack, as channels_redis 4 writes them, so Django processes read ours.
import { Decoder, Encoder } from '@msgpack/msgpack';
import { Sealer } from './fernet';
import { InvalidMessage, type LayerMessage, validateMessage } from './layer';

/** Turns layer messages into bytes and back. A layer encodes once per send, decodes once per process. */
export interface Codec {
  encode(message: LayerMessage): Uint8Array;
  decode(bytes: Uint8Array): LayerMessage;
}

/**
 * msgpack with strings as str and bytes as bin (Python's `use_bin_type=True`); maps decode to plain
 * objects, and a `__proto__` key is refused by the decoder, so no message can pollute prototypes.
 */
export class MsgpackCodec implements Codec {
  // One encoder/decoder per codec: they reuse their buffers, which matters on the publish path.
  private readonly encoder = new Encoder({ ignoreUndefined: true });
  private readonly decoder = new Decoder();

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
    return message;
  }
}

/**
 * channels_redis's serializer with `symmetric_encryption_keys`: each body is a Fernet token of the
 * msgpack bytes (the first key seals, every key opens). A token no key opens throws InvalidToken,
 * which the layers log (rate-limited), count and drop like any undecodable message.
 */
export class SealedCodec implements Codec {
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
    return this.inner.decode(this.sealer.open(bytes, this.ttl));
  }
}

/** The codec for a layer's options: msgpack, sealed when keys are given (an empty list means none). */
export function layerCodec(keys: ReadonlyArray<string> | undefined): Codec {
  return keys && keys.length > 0 ? new SealedCodec(new Sealer(keys)) : new MsgpackCodec();
}
