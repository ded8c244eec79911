import { signToken, verifyToken } from '../../../src';

describe('signed tokens', () => {
  test('a token verifies to its user id until it expires', () => {
    const now = Date.now();
    const token = signToken('alice', 's3cret', 60, now);
    expect(verifyToken(token, 's3cret', now)).toBe('alice');
    expect(verifyToken(token, 's3cret', now + 61_000)).toBeNull();
  });

  test('a wrong secret, an altered id or expiry, or garbage verifies to null', () => {
    const token = signToken('alice', 's3cret');
    const [id, expiry, signature] = token.split('.');
    expect(verifyToken(token, 'other')).toBeNull();
    expect(verifyToken(`${Buffer.from('mallory').toString('base64url')}.${expiry}.${signature}`, 's3cret')).toBeNull();
    expect(verifyToken(`${id}.${Number(expiry) + 1000}.${signature}`, 's3cret')).toBeNull();
    for (const bad of ['', 'a.b', 'a.b.c.d', `${id}.${expiry}.`, `${id}.${expiry}.${signature}x`]) {
      expect(verifyToken(bad, 's3cret')).toBeNull();
    }
  });
});
