import { type Application, type Connection, type Scope, createLogger, InMemoryChannelLayer, originValidator } from '../../src';

const inner: Application = async (scope) => ({ scope, open: async () => undefined, frame: () => undefined, closed: async () => undefined }) as Connection;
const layer = new InMemoryChannelLayer();
afterAll(() => layer.close());

function attempt(allowed: string[], origin: string | undefined, allowMissing?: boolean) {
  const scope = { headers: origin === undefined ? {} : { origin } } as unknown as Scope;
  return originValidator(allowed, { allowMissing })(inner)(scope, { channelLayer: layer, logger: createLogger('silent') });
}

describe('originValidator', () => {
  test.each([
    [['*'], 'https://anything.example'],
    [['https://example.com'], 'https://example.com'],
    [['example.com'], 'http://example.com:8080'],
    [['.example.com'], 'https://chat.example.com'],
    [['.example.com'], 'https://example.com'],
    [['localhost'], 'http://localhost:8000'],
  ])('%j allows %s', async (allowed, origin) => {
    await expect(attempt(allowed, origin)).resolves.toBeDefined();
  });

  test.each([
    [['https://example.com'], 'http://example.com'],
    [['example.com'], 'https://example.com.evil.net'],
    [['.example.com'], 'https://notexample.com'],
    [['localhost'], 'null'],
    [['localhost'], 'not a url'],
  ])('%j refuses %s with 403', async (allowed, origin) => {
    await expect(attempt(allowed, origin)).rejects.toMatchObject({ status: 403 });
  });

  test('a missing Origin (a non-browser client) is allowed unless allowMissing is false', async () => {
    await expect(attempt(['example.com'], undefined)).resolves.toBeDefined();
    await expect(attempt(['example.com'], undefined, false)).rejects.toMatchObject({ status: 403 });
  });
});
