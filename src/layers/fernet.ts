// Fernet tokens (AES-128-CBC + HMAC-SHA256) on node:crypto, with channels_redis's key derivation and key list.
import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { ChannelLayerError } from './layer';

/**
 * The Fernet spec (github.com/fernet/spec), as Python's `cryptography.fernet` implements it:
 *
 *   token = base64url( 0x80 | timestamp (u64 BE, seconds) | IV (16) | AES-128-CBC(PKCS7) | HMAC-SHA256 (32) )
 *
 * where the 32-byte key is split into the HMAC key (first half) and the AES key (second half), and
 * the HMAC covers everything before it. channels_redis 4 turns each of its `symmetric_encryption_keys`
 * into a Fernet key as `urlsafe_b64encode(sha256(key))`, so the raw key here is `sha256(utf8(key))`.
 *
 *   const sealer = new Sealer(['new key', 'old key']);
 *   const token = sealer.seal(Buffer.from('hi'));   // under 'new key'
 *   sealer.open(token);                              // tries 'new key', then 'old key'
 */

const VERSION = 0x80;
const HEADER = 1 + 8 + 16; // version, timestamp, IV
const MAC = 32;
/** cryptography's `_MAX_CLOCK_SKEW`: a token stamped further in the future than this is refused. */
const MAX_CLOCK_SKEW = 60;

/** A token that no key opens: tampered, truncated, not a Fernet token, too old, or under an unknown key. */
export class InvalidToken extends ChannelLayerError {
  constructor(
    /** 'signature' is the only reason another key might fix (an unknown or rotated-out key, or tampering). */
    readonly reason: 'format' | 'expired' | 'future' | 'signature' | 'padding',
    detail: string,
  ) {
    super('INVALID_TOKEN', `encrypted layer message refused: ${detail}; check that every process has the sending key in its CHANNEL_LAYER_KEYS (symmetric_encryption_keys)`);
  }
}

/** One Fernet key. `time` is injectable so tests can produce tokens with a fixed timestamp. */
export class Fernet {
  private readonly signingKey: Buffer;
  private readonly encryptionKey: Buffer;

  /** `key`: the 32 raw key bytes (what Python's Fernet holds after base64-decoding its key). */
  constructor(key: Uint8Array) {
    if (key.length !== 32) throw new Error(`Fernet: a key is 32 bytes, got ${key.length}`);
    this.signingKey = Buffer.from(key.subarray(0, 16));
    this.encryptionKey = Buffer.from(key.subarray(16, 32));
  }

  /** channels_redis's `make_fernet`: the key is sha256 of the UTF-8 string (or the bytes), whatever its length. */
  static fromPassphrase(key: string | Uint8Array): Fernet {
    return new Fernet(createHash('sha256').update(key).digest());
  }

  /** A token (base64url ASCII, with padding, as Python writes it) for `plaintext`, stamped `now` (seconds). */
  encrypt(plaintext: Uint8Array, now = Math.floor(Date.now() / 1000), iv: Uint8Array = randomBytes(16)): Buffer {
    const cipher = createCipheriv('aes-128-cbc', this.encryptionKey, iv);
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    const raw = Buffer.allocUnsafe(HEADER + body.length + MAC);
    raw[0] = VERSION;
    raw.writeBigUInt64BE(BigInt(now), 1);
    raw.set(iv, 9);
    body.copy(raw, HEADER);
    createHmac('sha256', this.signingKey).update(raw.subarray(0, HEADER + body.length)).digest().copy(raw, HEADER + body.length);
    return Buffer.from(raw.toString('base64url') + '='.repeat((3 - (raw.length % 3)) % 3), 'latin1');
  }

  /**
   * The plaintext of `token`; throws InvalidToken. `ttl` (seconds) refuses tokens older than that,
   * as Python's `decrypt(token, ttl)`; undefined accepts any age.
   */
  decrypt(token: Uint8Array | string, ttl?: number, now = Math.floor(Date.now() / 1000)): Buffer {
    return this.decryptRaw(decodeToken(token), ttl, now);
  }

  /** `raw`: the base64-decoded token, so a key list decodes once and tries each key. */
  decryptRaw(raw: Buffer, ttl: number | undefined, now: number): Buffer {
    const bodyLength = raw.length - HEADER - MAC;
    if (raw[0] !== VERSION || bodyLength <= 0 || bodyLength % 16 !== 0) throw new InvalidToken('format', 'not a Fernet token');
    const stamped = Number(raw.readBigUInt64BE(1));
    // As cryptography: both time checks only when a ttl is asked for.
    if (ttl !== undefined && stamped + ttl < now) throw new InvalidToken('expired', `token expired (older than ${ttl} s)`);
    if (ttl !== undefined && now + MAX_CLOCK_SKEW < stamped) throw new InvalidToken('future', 'token stamped in the future (clock skew over 60 s)');
    const expected = createHmac('sha256', this.signingKey).update(raw.subarray(0, HEADER + bodyLength)).digest();
    if (!timingSafeEqual(expected, raw.subarray(HEADER + bodyLength))) throw new InvalidToken('signature', 'signature matches no key');
    try {
      const decipher = createDecipheriv('aes-128-cbc', this.encryptionKey, raw.subarray(9, HEADER));
      return Buffer.concat([decipher.update(raw.subarray(HEADER, HEADER + bodyLength)), decipher.final()]);
    } catch {
      throw new InvalidToken('padding', 'bad padding');
    }
  }
}

/**
 * channels_redis's `MultiFernet` over `symmetric_encryption_keys`: the first key seals, every key opens
 * (so a rotation deploys [new, old] everywhere first, then drops old). This is the one object the
 * layers, history and presence use to keep their bytes in Redis unreadable without a key.
 */
export class Sealer {
  private readonly fernets: Fernet[];

  constructor(keys: ReadonlyArray<string | Uint8Array>) {
    if (keys.length === 0) throw new Error('symmetricEncryptionKeys: give at least one key (the first encrypts, all decrypt)');
    for (const key of keys) if (key.length === 0) throw new Error('symmetricEncryptionKeys: a key is empty');
    this.fernets = keys.map((key) => Fernet.fromPassphrase(key));
  }

  /** A Fernet token (ASCII bytes) of `plaintext` under the first key. */
  seal(plaintext: Uint8Array, now?: number): Buffer {
    return this.fernets[0].encrypt(plaintext, now);
  }

  /** The plaintext of a token from any key; throws InvalidToken. `ttl` in seconds, as Fernet.decrypt. */
  open(token: Uint8Array | string, ttl?: number, now = Math.floor(Date.now() / 1000)): Buffer {
    const raw = decodeToken(token);
    let last: InvalidToken | undefined;
    for (const fernet of this.fernets) {
      try {
        return fernet.decryptRaw(raw, ttl, now);
      } catch (error) {
        last = error as InvalidToken;
        // Only a signature mismatch depends on the key; any other verdict is the same for every key.
        if (last.reason !== 'signature') break;
      }
    }
    throw last ?? new InvalidToken('signature', 'no key');
  }

  /** `seal` for text (a presence name, a history field): the token as a string. */
  sealString(text: string): string {
    return this.seal(Buffer.from(text, 'utf8')).toString('latin1');
  }

  /** `open` for text sealed with `sealString`. */
  openString(token: string, ttl?: number): string {
    return this.open(token, ttl).toString('utf8');
  }
}

/** Python's `urlsafe_b64decode` needs correct padding; Node's decoder is lenient, so check the form first. */
function decodeToken(token: Uint8Array | string): Buffer {
  const text = typeof token === 'string' ? token : Buffer.from(token.buffer, token.byteOffset, token.byteLength).toString('latin1');
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9_-]*={0,2}$/.test(text)) throw new InvalidToken('format', 'not a Fernet token (not base64url)');
  return Buffer.from(text, 'base64url');
}
