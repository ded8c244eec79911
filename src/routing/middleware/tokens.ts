// Signed, expiring user tokens (HMAC-SHA256), checked in constant time.
import { createHmac, timingSafeEqual } from 'node:crypto';

/** A token for `userId`, valid `ttlSeconds` (default one day): `<base64url id>.<expiry>.<signature>`. */
export function signToken(userId: string, secret: string, ttlSeconds = 86_400, now = Date.now()): string {
  const payload = `${Buffer.from(userId).toString('base64url')}.${Math.floor(now / 1000) + ttlSeconds}`;
  return `${payload}.${sign(payload, secret)}`;
}

/** The user id of a valid, unexpired token; null for anything else. */
export function verifyToken(token: string, secret: string, now = Date.now()): string | null {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  const [id, expiry, signature] = parts;
  const expected = Buffer.from(sign(`${id}.${expiry}`, secret));
  const given = Buffer.from(signature);
  // timingSafeEqual needs equal lengths; the length of a valid signature is public anyway.
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
  if (!/^\d+$/.test(expiry) || Number(expiry) * 1000 <= now) return null;
  return Buffer.from(id, 'base64url').toString();
}

function sign(payload: string, secret: string): string {
  return createHmac('sha256', secret).update(payload).digest('base64url');
}
