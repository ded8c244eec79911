// Message bodies on the wire: msgpack, as channels_redis 4 writes them, so Django processes read ours.
import { Decoder, Encoder } from '@msgpack/msgpack';
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
