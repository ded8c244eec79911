// History in Redis: its keys, the Lua scripts (record-and-publish, read, set a policy) and the bytes they carry.
import { createHash } from 'node:crypto';
import { Encoder } from '@msgpack/msgpack';
import { SEALED_FIELD, type SealedCodec } from '../codec';
import { EPOCH_KEY, OFFSET_KEY } from '../history';
import { InvalidMessage, type LayerMessage } from '../layer';

/**
 * Keys of group G's history (Redis channel `<prefix>__group__G`): a Stream `<prefix>__stream__{<channel>}`
 * and a meta hash `<prefix>__meta__{<channel>}` (fields `epoch`, `offset`). The `{...}` hash tag puts both
 * in the slot of the shard channel, so in Redis Cluster one script records and SPUBLISHes on one node;
 * on several hosts they live where the group's channel hashes to.
 */
export function historyKeys(prefix: string, groupChannel: string): [stream: string, meta: string] {
  return [`${prefix}__stream__{${groupChannel}}`, `${prefix}__meta__{${groupChannel}}`];
}

/** The pattern table: a hash pattern -> "order size ttl", and the (shard) channel announcing changes. */
export function historyTable(prefix: string): string {
  return `${prefix}__history`;
}


/**
 * Records and publishes one group message atomically, so every subscriber sees offsets in order.
 * KEYS: stream, meta. ARGV: 1 the message's msgpack map up to (not including) its last two entries,
 * its header already counting them; 2 the Redis channel; 3 size; 4 ttl (s); 5 meta ttl (s); 6 a
 * token for a new epoch; 7 'PUBLISH' or 'SPUBLISH'. Appends `epoch` and `offset` (last, as JS would
 * encode them), XADDs the payload, trims by size (MAXLEN) and age (MINID), sets expiries, publishes.
 * A missing meta hash means the history was lost: a new epoch, offsets from 1, the stream cleared.
 * Returns { offset, receivers }.
 */
export const RECORD_SCRIPT = `
local offset = redis.call('HINCRBY', KEYS[2], 'offset', 1)
local epoch = redis.call('HGET', KEYS[2], 'epoch')
local t = redis.call('TIME')
if not epoch then
  epoch = string.format('%x%05x', tonumber(t[1]), tonumber(t[2])) .. ARGV[6]
  redis.call('HSET', KEYS[2], 'epoch', epoch)
  if offset == 1 then redis.call('DEL', KEYS[1]) end
end
local payload = ARGV[1] .. cmsgpack.pack('${EPOCH_KEY}', epoch, '${OFFSET_KEY}', offset)
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[3], '*', 'd', payload)
redis.call('XTRIM', KEYS[1], 'MINID', now - tonumber(ARGV[4]) * 1000)
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[5])
local receivers = redis.call(ARGV[7], ARGV[2], payload)
return { offset, receivers }
`;

/**
 * A group's history as one consistent snapshot: { epoch, latest offset, then (id, payload) pairs of
 * the messages younger than the ttl, oldest first }. Creates the epoch of a group that has none yet,
 * so even an empty stream has a position. KEYS: stream, meta. ARGV: ttl, meta ttl, epoch token.
 */
export const READ_SCRIPT = `
local t = redis.call('TIME')
local epoch = redis.call('HGET', KEYS[2], 'epoch')
if not epoch then
  epoch = string.format('%x%05x', tonumber(t[1]), tonumber(t[2])) .. ARGV[3]
  redis.call('HSET', KEYS[2], 'epoch', epoch, 'offset', 0)
  redis.call('EXPIRE', KEYS[2], ARGV[2])
  redis.call('DEL', KEYS[1])
end
local offset = tonumber(redis.call('HGET', KEYS[2], 'offset') or '0')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = { epoch, offset }
for _, entry in ipairs(redis.call('XRANGE', KEYS[1], now - tonumber(ARGV[1]) * 1000, '+')) do
  out[#out + 1] = entry[1]
  out[#out + 1] = entry[2][2]
end
return out
`;

/**
 * Sets (ARGV[2] = "size ttl") or removes (ARGV[2] = '') pattern ARGV[1] in the table KEYS[1], then
 * announces it with ARGV[4] ('PUBLISH'/'SPUBLISH') on ARGV[3]. A pattern keeps the place in the
 * order where it was first set (field '#' counts).
 */
export const SET_POLICY_SCRIPT = `
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  local old = redis.call('HGET', KEYS[1], ARGV[1])
  local order = old and string.match(old, '^(%d+) ') or redis.call('HINCRBY', KEYS[1], '#', 1)
  redis.call('HSET', KEYS[1], ARGV[1], order .. ' ' .. ARGV[2])
end
redis.call(ARGV[4], ARGV[3], ARGV[1])
return 1
`;

export interface Script {
  source: string;
  sha: string;
}

function script(source: string): Script {
  return { source, sha: createHash('sha1').update(source).digest('hex') };
}

export const RECORD = script(RECORD_SCRIPT);
export const READ = script(READ_SCRIPT);
export const SET_POLICY = script(SET_POLICY_SCRIPT);

/**
 * The message as the record script's ARGV[1]: its msgpack map without `epoch`/`offset` (reserved in
 * history groups), the header counting two entries more for the script to append. The result is the
 * msgpack of `{ ...message, epoch, offset }`: a channels_redis subscriber decodes it as a dict.
 */
export class RecordEncoder {
  private readonly encoder = new Encoder({ ignoreUndefined: true });

  /** `sealed`: with encryption keys, the record is `{ __sealed__: <token of the message> }` plus epoch and offset. */
  constructor(private readonly sealed: SealedCodec | null = null) {}

  head(message: LayerMessage): Buffer {
    let plain = message;
    if (EPOCH_KEY in message || OFFSET_KEY in message) {
      const { [EPOCH_KEY]: _epoch, [OFFSET_KEY]: _offset, ...rest } = message;
      plain = rest;
    }
    let body: Uint8Array;
    try {
      body = this.encoder.encode(this.sealed ? { [SEALED_FIELD]: this.sealed.encode(plain) } : plain);
    } catch (error) {
      throw new InvalidMessage(`cannot be encoded (${(error as Error).message})`);
    }
    const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
    const first = body[0];
    const [count, skip] = first >= 0x80 && first <= 0x8f ? [first & 0x0f, 1] : first === 0xde ? [view.getUint16(1), 3] : [view.getUint32(1), 5];
    const total = count + 2;
    const header = total <= 0x0f ? Buffer.of(0x80 | total) : total <= 0xffff ? Buffer.of(0xde, total >> 8, total & 0xff) : Buffer.of(0xdf, total >>> 24, (total >> 16) & 0xff, (total >> 8) & 0xff, total & 0xff);
    return Buffer.concat([header, body.subarray(skip)]);
  }
}
