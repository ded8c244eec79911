// Which of several Redis hosts owns a channel or group: channels_redis's `_consistent_hash`, bit for bit.

/** CRC-32 (IEEE, as Python's binascii.crc32); own table because zlib.crc32 needs Node >= 20.15. */
const CRC_TABLE = (() => {
  const table = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c;
  }
  return table;
})();

export function crc32(bytes: Uint8Array): number {
  let crc = -1;
  for (let i = 0; i < bytes.length; i++) crc = CRC_TABLE[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ -1) >>> 0;
}

/**
 * Index of the host (0..ringSize-1) that owns `name`, as channels_redis computes it:
 * `int((crc32(utf8(name)) & 0xFFF) / (4096 / ringSize))`. A Django process spreading over the same
 * host list in the same order picks the same host, so groups and channels meet on one Redis.
 */
export function consistentHash(name: string, ringSize: number): number {
  // channels_redis skips hashing for one host; the result is the same (0), only cheaper.
  if (ringSize === 1) return 0;
  const bucket = crc32(Buffer.from(name, 'utf8')) & 0xfff;
  // Float division, as Python's `4096 / float(ring_size)`, so the rounding matches exactly.
  return Math.floor(bucket / (4096 / ringSize));
}
