import { type Application, type Connection, type Logger, type Scope, createLogger, InMemoryChannelLayer, originValidator } from '../../../src';
import { memoryLogger } from '../../support/logs';

const inner: Application = async (scope) => ({ scope, open: async () => undefined, frame: () => undefined, closed: async () => undefined }) as Connection;
const layer = new InMemoryChannelLayer();
afterAll(() => layer.close());

function attempt(allowed: string[], origin: string | undefined, allowMissing?: boolean) {
  const scope = { path: '/ws/x/', headers: origin === undefined ? {} : { origin } } as unknown as Scope;
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

describe('originValidator refusal log', () => {
  const SECRET = 'S3CR3T-t0ken-value';
  afterEach(() => jest.restoreAllMocks());

  function refuse(validate: ReturnType<typeof originValidator>, logger: Logger, origin: string) {
    const scope = {
      path: '/ws/chat/lobby/',
      query: new URLSearchParams(`token=${SECRET}`),
      headers: { origin },
    } as unknown as Scope;
    return validate(inner)(scope, { channelLayer: layer, logger }).catch((error: unknown) => error);
  }

  test('names the origin, the path and the remedy, without the query; once per origin per minute', async () => {
    const { logger, lines, text } = memoryLogger();
    const validate = originValidator(['localhost']);
    let now = 1_000_000;
    jest.spyOn(Date, 'now').mockImplementation(() => now);
    for (let i = 0; i < 50; i++) expect(await refuse(validate, logger, 'https://app.example')).toMatchObject({ status: 403 });
    await refuse(validate, logger, 'https://other.example');
    let refusals = lines().filter((line) => String(line.msg).startsWith('origin refused'));
    expect(refusals).toHaveLength(2);
    expect(refusals[0]).toMatchObject({ level: 40, origin: 'https://app.example', path: '/ws/chat/lobby/' });
    expect(refusals[0].msg).toMatch(/ALLOWED_ORIGINS/);
    expect(refusals[0].msg).toMatch(/originValidator\(/);
    expect(text()).not.toContain(SECRET);
    now += 61_000;
    await refuse(validate, logger, 'https://app.example');
    refusals = lines().filter((line) => String(line.msg).startsWith('origin refused'));
    expect(refusals).toHaveLength(3);
  });

  test('many distinct origins cannot amplify the log', async () => {
    const { logger, lines } = memoryLogger();
    const validate = originValidator(['localhost']);
    expect(await refuse(validate, logger, `https://${'x'.repeat(5000)}.example`)).toMatchObject({ message: expect.stringMatching(/^.{0,150}$/) });
    for (let i = 0; i < 1000; i++) await refuse(validate, logger, `https://a${i}.example`);
    const all = lines();
    expect(all[0].origin).toMatch(/^https:\/\/xxx/);
    expect(all.length).toBeLessThanOrEqual(50);
    for (const line of all) expect(JSON.stringify(line).length).toBeLessThan(1000);
  });

  test('the refusals left unlogged in a minute are counted in one line the next minute', async () => {
    const { logger, lines } = memoryLogger();
    const validate = originValidator(['localhost']);
    let now = 5_000_000;
    jest.spyOn(Date, 'now').mockImplementation(() => now);
    for (let i = 0; i < 60; i++) await refuse(validate, logger, `https://a${i}.example`);
    now += 60_000;
    await refuse(validate, logger, 'https://late.example');
    const all = lines();
    expect(all).toHaveLength(52);
    expect(all[50]).toMatchObject({ refused: 10 });
    expect(all[51]).toMatchObject({ origin: 'https://late.example' });
  });
});
