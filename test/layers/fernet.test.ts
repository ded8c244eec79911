// Fernet and Sealer against Python's cryptography (the library channels_redis uses), both ways.
import { execFileSync } from 'node:child_process';
import { Fernet, InvalidToken, Sealer } from '../../src/layers/fernet';

const PYTHON = '/usr/bin/python3';

function hasPythonFernet(): boolean {
  try {
    execFileSync(PYTHON, ['-c', 'import cryptography.fernet'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs `script` under Python with JSON on stdin and returns its JSON output. `fernet(key)` there is
 * channels_redis's make_fernet, copied in spirit: urlsafe_b64encode(sha256(key)).
 */
function python<T>(script: string, input: unknown): T {
  const prelude = [
    'import base64, hashlib, json, sys',
    'from cryptography.fernet import Fernet, MultiFernet, InvalidToken',
    'def fernet(key): return Fernet(base64.urlsafe_b64encode(hashlib.sha256(key.encode("utf8")).digest()))',
    'data = json.load(sys.stdin)',
  ].join('\n');
  const out = execFileSync(PYTHON, ['-c', `${prelude}\n${script}`], { input: JSON.stringify(input) });
  return JSON.parse(out.toString()) as T;
}

const NOW = 1_700_000_000;

(hasPythonFernet() ? describe : describe.skip)('Fernet interop with Python cryptography', () => {
  it('matches the Fernet spec vector byte for byte (fixed time and IV)', () => {
    // github.com/fernet/spec generate.json: "hello" at 1985-10-26T01:20:00-07:00, IV 00..0f.
    const key = Buffer.from('cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=', 'base64url');
    const iv = Uint8Array.from({ length: 16 }, (_, i) => i);
    const token = new Fernet(key).encrypt(Buffer.from('hello'), 499162800, iv).toString();
    expect(token).toBe('gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==');
    expect(new Fernet(key).decrypt(token, 60, 499162800 + 10).toString()).toBe('hello');
  });

  it('produces the same token as Python for the same key, time and IV (channels_redis key derivation)', () => {
    const iv = Buffer.alloc(16, 7);
    const plaintexts = ['', 'x', 'a message of exactly 32 bytes!!!', 'é'.repeat(100)];
    const python_tokens = python<string[]>(
      'print(json.dumps([fernet(data["key"])._encrypt_from_parts(p.encode("utf8"), data["now"], bytes.fromhex(data["iv"])).decode() for p in data["texts"]]))',
      { key: 'secret key', now: NOW, iv: iv.toString('hex'), texts: plaintexts },
    );
    const fernet = Fernet.fromPassphrase('secret key');
    expect(plaintexts.map((text) => fernet.encrypt(Buffer.from(text), NOW, iv).toString())).toEqual(python_tokens);
  });

  it('decrypts tokens Python made at a fixed time, honouring ttl as Python does', () => {
    const tokens = python<string[]>(
      'print(json.dumps([fernet("k1").encrypt_at_time(p.encode("utf8"), data["now"]).decode() for p in data["texts"]]))',
      { now: NOW, texts: ['hello', '\u{1F600} unicode', 'z'.repeat(5000)] },
    );
    const fernet = Fernet.fromPassphrase('k1');
    expect(tokens.map((token) => fernet.decrypt(token, 70, NOW + 70).toString())).toEqual(['hello', '\u{1F600} unicode', 'z'.repeat(5000)]);
    expect(() => fernet.decrypt(tokens[0], 70, NOW + 71)).toThrow(InvalidToken);
    // Python refuses a token stamped over 60 s ahead when a ttl is given; so do we.
    expect(() => fernet.decrypt(tokens[0], 70, NOW - 61)).toThrow(/future/);
    expect(fernet.decrypt(tokens[0], undefined, NOW - 1000).toString()).toBe('hello');
  });

  it('Python decrypts tokens Node made, and MultiFernet opens them by any listed key', () => {
    const sealer = new Sealer(['new', 'old']);
    const tokens = ['hello', '', 'ü'.repeat(300)].map((text) => sealer.seal(Buffer.from(text)).toString());
    const opened = python<string[]>(
      'm = MultiFernet([fernet("old"), fernet("new")])\nprint(json.dumps([m.decrypt(t.encode(), 60).decode("utf8") for t in data]))',
      tokens,
    );
    expect(opened).toEqual(['hello', '', 'ü'.repeat(300)]);
    const refused = python<boolean>(
      'try:\n  fernet("old").decrypt(data.encode())\n  print("false")\nexcept InvalidToken:\n  print("true")',
      tokens[0],
    );
    expect(refused).toBe(true);
  });

  it('Sealer: the first key seals, every key opens (rotation), an unknown key is refused', () => {
    const [underOld] = python<string[]>('print(json.dumps([fernet("old").encrypt(b"from old").decode()]))', {});
    const rotated = new Sealer(['new', 'old']);
    expect(rotated.open(underOld, 60).toString()).toBe('from old');
    const fromNew = rotated.seal(Buffer.from('from new'));
    expect(new Sealer(['new']).open(fromNew).toString()).toBe('from new');
    expect(() => new Sealer(['old']).open(fromNew)).toThrow(expect.objectContaining({ code: 'INVALID_TOKEN', reason: 'signature' }));
    expect(() => new Sealer(['other', 'another']).open(underOld)).toThrow(expect.objectContaining({ reason: 'signature' }));
  });
});

describe('Fernet refuses what is not a valid token', () => {
  const sealer = new Sealer(['k']);
  const token = sealer.seal(Buffer.from('payload'));

  it.each([
    ['msgpack plaintext', Buffer.from([0x81, 0xa4, 0x74, 0x79, 0x70, 0x65, 0xa1, 0x78])],
    ['empty', Buffer.alloc(0)],
    ['base64 without padding', token.subarray(0, token.length - 1)],
    ['truncated', token.subarray(0, 40)],
    ['not base64', Buffer.from('gAAAA!!!')],
  ])('%s', (_name, bytes) => {
    expect(() => sealer.open(bytes)).toThrow(InvalidToken);
  });

  it('a flipped byte of the ciphertext or the signature', () => {
    const raw = Buffer.from(token.toString(), 'base64url');
    for (const at of [30, raw.length - 1]) {
      const bad = Buffer.from(raw);
      bad[at] ^= 1;
      expect(() => sealer.open(bad.toString('base64url') + '='.repeat((3 - (bad.length % 3)) % 3))).toThrow(
        expect.objectContaining({ reason: 'signature' }),
      );
    }
  });

  it('refuses an empty key list and empty keys', () => {
    expect(() => new Sealer([])).toThrow(/at least one key/);
    expect(() => new Sealer(['a', ''])).toThrow(/empty/);
  });

  it('sealString/openString carry text (presence names, history fields)', () => {
    const sealed = sealer.sealString('Zoë');
    expect(sealed).toMatch(/^gAAAAA[A-Za-z0-9_-]+=*$/);
    expect(sealed).not.toContain('Zo');
    expect(sealer.openString(sealed)).toBe('Zoë');
  });
});
