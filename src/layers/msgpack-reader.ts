// msgpack decoding for layer messages: @msgpack/msgpack's results, with strings made by Node's native UTF-8 decoding.
import { Decoder } from '@msgpack/msgpack';

/**
 * Decodes msgpack exactly as @msgpack/msgpack's `Decoder` (default options) does, faster on what layer
 * messages are made of. Every group message from Redis is decoded once per process, and the library
 * builds each string value of up to 200 bytes code unit by code unit in JavaScript, most of a decode's
 * time (bench/README.md, "The Redis receive path"). Here a string is one call to Node's UTF-8
 * decoding, and map keys come from a cache, as the library's do; so do `type` values.
 *
 * Whatever this reader does not handle the same way goes to the library, which then decodes the whole
 * input and throws its own errors: extension types, strings that are not valid UTF-8 (the library
 * keeps their bytes as code units, Node would put U+FFFD), keys the library refuses, nesting deeper
 * than MAX_DEPTH, malformed or truncated input.
 */
export class MsgpackReader {
  private readonly library = new Decoder();
  private readonly keys = new KeyCache();
  /** The input as a Buffer, for Node's decoding; `input` itself is what binary values are views of. */
  private buffer: Buffer = EMPTY;
  private input: Uint8Array = EMPTY;
  private pos = 0;

  decode(bytes: Uint8Array): unknown {
    this.input = bytes;
    this.buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = 0;
    try {
      const value = this.value(0);
      if (this.pos === bytes.length) return value;
    } catch (error) {
      if (!(error instanceof Unsupported)) throw error;
    } finally {
      this.input = EMPTY;
      this.buffer = EMPTY;
    }
    return this.library.decode(bytes);
  }

  private value(depth: number): unknown {
    const head = this.byte();
    if (head < 0x80) return head; // positive fixint
    if (head < 0x90) return this.map(head & 0x0f, depth);
    if (head < 0xa0) return this.array(head & 0x0f, depth);
    if (head < 0xc0) return this.string(head & 0x1f);
    if (head >= 0xe0) return head - 0x100; // negative fixint
    const buffer = this.buffer;
    const at = this.pos;
    if (at + FIELD_BYTES[head] > buffer.length) throw new Unsupported();
    switch (head) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return this.binary(this.byte());
      case 0xc5: return this.binary(this.skip(2, buffer.readUInt16BE(at)));
      case 0xc6: return this.binary(this.skip(4, buffer.readUInt32BE(at)));
      case 0xca: return this.skip(4, buffer.readFloatBE(at));
      case 0xcb: return this.skip(8, buffer.readDoubleBE(at));
      case 0xcc: return this.byte();
      case 0xcd: return this.skip(2, buffer.readUInt16BE(at));
      case 0xce: return this.skip(4, buffer.readUInt32BE(at));
      // 64-bit integers become numbers (precision lost past 2^53), as the library's default (no BigInt).
      case 0xcf: return this.skip(8, buffer.readUInt32BE(at) * 2 ** 32 + buffer.readUInt32BE(at + 4));
      case 0xd0: return this.skip(1, buffer.readInt8(at));
      case 0xd1: return this.skip(2, buffer.readInt16BE(at));
      case 0xd2: return this.skip(4, buffer.readInt32BE(at));
      case 0xd3: return this.skip(8, buffer.readInt32BE(at) * 2 ** 32 + buffer.readUInt32BE(at + 4));
      case 0xd9: return this.string(this.byte());
      case 0xda: return this.string(this.skip(2, buffer.readUInt16BE(at)));
      case 0xdb: return this.string(this.skip(4, buffer.readUInt32BE(at)));
      case 0xdc: return this.array(this.skip(2, buffer.readUInt16BE(at)), depth);
      case 0xdd: return this.array(this.skip(4, buffer.readUInt32BE(at)), depth);
      case 0xde: return this.map(this.skip(2, buffer.readUInt16BE(at)), depth);
      case 0xdf: return this.map(this.skip(4, buffer.readUInt32BE(at)), depth);
      default: throw new Unsupported(); // extension types (0xc7-0xc9, 0xd4-0xd8) and the unused 0xc1
    }
  }

  private map(size: number, depth: number): Record<string, unknown> {
    if (depth === MAX_DEPTH) throw new Unsupported();
    const map: Record<string, unknown> = {};
    for (let i = 0; i < size; i++) {
      const key = this.name(depth);
      // The library's rules: string or number keys only, and never `__proto__` (no prototype pollution).
      if ((typeof key !== 'string' && typeof key !== 'number') || key === '__proto__') throw new Unsupported();
      // A message's `type` names its handler: the same string object for every message of a type lets
      // each member's handler lookup match it by identity, not by comparing characters.
      map[key] = key === 'type' ? this.name(depth) : this.value(depth + 1);
    }
    return map;
  }

  /** A short string that names something (a key, a type) comes from the cache; anything else is read as a value. */
  private name(depth: number): unknown {
    const length = this.byte() - 0xa0; // fixstr: 0xa0 to 0xbf
    if (length < 0 || length > KeyCache.MAX_LENGTH) {
      this.pos--;
      return this.value(depth + 1);
    }
    const start = this.pos;
    const end = start + length;
    if (end > this.buffer.length) throw new Unsupported();
    this.pos = end;
    return this.keys.find(this.buffer, start, end) ?? this.keys.add(this.buffer, start, end, this.text(start, end));
  }

  private array(size: number, depth: number): unknown[] {
    // Each item takes at least a byte: a size beyond what is left is malformed, not an array to allocate.
    if (depth === MAX_DEPTH || size > this.input.length - this.pos) throw new Unsupported();
    const array = new Array<unknown>(size);
    for (let i = 0; i < size; i++) array[i] = this.value(depth + 1);
    return array;
  }

  private string(length: number): string {
    const start = this.pos;
    const end = start + length;
    if (end > this.buffer.length) throw new Unsupported();
    this.pos = end;
    return this.text(start, end);
  }

  private text(start: number, end: number): string {
    const text = this.buffer.toString('utf8', start, end);
    // Node puts U+FFFD where the bytes are not UTF-8, where the library keeps them as code units: such
    // strings (and the rare ones that hold U+FFFD itself) are left to the library.
    if (text.includes(REPLACEMENT)) throw new Unsupported();
    return text;
  }

  /** A view into the input, as the library returns binary values. */
  private binary(length: number): Uint8Array {
    const start = this.pos;
    if (start + length > this.input.length) throw new Unsupported();
    this.pos = start + length;
    return this.input.subarray(start, start + length);
  }

  private byte(): number {
    if (this.pos >= this.buffer.length) throw new Unsupported();
    return this.buffer[this.pos++];
  }

  /** Moves past a field of `size` bytes that `value` was read from (`value` checked it was there). */
  private skip<T>(size: number, value: T): T {
    this.pos += size;
    return value;
  }
}

/**
 * Map keys (`type`, `message`...) and types (`chat.message`) repeat message after message: short ones
 * are kept, found by a hash of their bytes, so a name costs no new string and V8 meets a property name
 * it has seen. Bounded: once full, new names are simply not kept.
 */
class KeyCache {
  /**
   * Bytes of the longest name kept: a fixstr's longest, since message types (`notifications.announce`)
   * run longer than keys (the library keeps keys up to 16). `name` relies on it staying within fixstr.
   */
  static readonly MAX_LENGTH = 31;
  /** Layer messages use a handful of keys and types; a publisher sending endless new ones only fills this much. */
  private static readonly CAPACITY = 1024;
  private readonly byHash = new Map<number, { bytes: Buffer; text: string }>();

  find(buffer: Buffer, start: number, end: number): string | undefined {
    const entry = this.byHash.get(KeyCache.hash(buffer, start, end));
    if (entry === undefined || entry.bytes.length !== end - start) return undefined;
    for (let i = start; i < end; i++) if (buffer[i] !== entry.bytes[i - start]) return undefined;
    return entry.text;
  }

  /** Keeps `text`, the key at `start`..`end` (a hash shared with another key keeps the first). */
  add(buffer: Buffer, start: number, end: number, text: string): string {
    const hash = KeyCache.hash(buffer, start, end);
    if (this.byHash.size < KeyCache.CAPACITY && !this.byHash.has(hash)) {
      this.byHash.set(hash, { bytes: Buffer.from(buffer.subarray(start, end)), text });
    }
    return text;
  }

  /** FNV-1a over the bytes, as a small integer (a Map finds those without hashing a string). */
  private static hash(buffer: Buffer, start: number, end: number): number {
    let hash = 0x811c9dc5;
    for (let i = start; i < end; i++) hash = Math.imul(hash ^ buffer[i], 0x01000193);
    return hash >>> 1;
  }
}

/** Bytes after each head byte from 0xc0 up that hold its value or its length (0 for the rest). */
const FIELD_BYTES = new Uint8Array(256);
for (const [head, size] of [
  [0xc5, 2], [0xc6, 4], [0xca, 4], [0xcb, 8], [0xcd, 2], [0xce, 4], [0xcf, 8], [0xd0, 1], [0xd1, 2], [0xd2, 4], [0xd3, 8],
  [0xda, 2], [0xdb, 4], [0xdc, 2], [0xdd, 4], [0xde, 2], [0xdf, 4],
]) FIELD_BYTES[head] = size;

/** Deeper nesting than this is left to the library, whose decoder keeps its own stack instead of recursing. */
const MAX_DEPTH = 100;

const EMPTY = Buffer.alloc(0);

/** U+FFFD, what Node's UTF-8 decoding puts where the bytes are not UTF-8. */
const REPLACEMENT = '\uFFFD';

/** Thrown inside the reader for input it leaves to the library; never leaves `decode`. */
class Unsupported extends Error {}
