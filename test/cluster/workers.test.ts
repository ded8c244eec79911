import { request } from 'node:http';
import { ServerProcess, runCli } from '../support/processes';
import { RedisServer, describeRedis } from '../support/redis';
import { Inbox, openClient, openInbox } from '../support/sockets';
import { until, within } from '../support/wait';

interface Health {
  pid: number;
  worker?: number;
  connections: number;
  layer: { backend: string; state: string };
}

function get(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
}

/** One sample's value from a Prometheus exposition, e.g. `channelkit_connections`. */
function sample(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  if (line === undefined) throw new Error(`no ${name} in /metrics`);
  return Number(line.slice(name.length + 1));
}

function healthz(port: number): Promise<Health> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/healthz', agent: false }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve(JSON.parse(body) as Health));
    });
    // A connection handed to a worker as it dies is never answered.
    req.setTimeout(2000, () => req.destroy(new Error('no answer from /healthz within 2 s')));
    req.on('error', reject);
    req.end();
  });
}

/** Asks /healthz until every one of `count` workers answered; the latest answer of each, by pid. */
async function workersByPid(port: number, count: number, accept: (seen: Map<number, Health>) => boolean = () => true): Promise<Map<number, Health>> {
  const seen = new Map<number, Health>();
  await until(
    async () => {
      // While a worker dies and restarts, a request can fail: ask again.
      const health = await healthz(port).catch(() => null);
      if (health === null) return false;
      seen.set(health.pid, health);
      return seen.size >= count && accept(seen);
    },
    20_000,
    `/healthz answers from ${count} workers`,
    10,
  );
  return seen;
}

/** Starts `channelkit serve` with 2 workers; resolves with the port once both listen. */
async function startTwoWorkers(env: NodeJS.ProcessEnv): Promise<{ server: ServerProcess; port: number }> {
  const server = new ServerProcess({ WORKERS: '2', ...env });
  const port = await server.ready;
  await until(() => server.output.includes('"msg":"all workers listening"'), 60_000, 'both workers listening');
  return { server, port };
}

async function openChat(port: number, room: string, count: number): Promise<Inbox[]> {
  const inboxes: Inbox[] = [];
  for (let i = 0; i < count; i++) inboxes.push(new Inbox(await openClient(`ws://127.0.0.1:${port}/ws/chat/${room}/`)));
  return inboxes;
}

/** Clients spread over both workers (each has some), then one message typed on the first reaches all. */
async function expectChatSpansWorkers(port: number, clients: Inbox[], text: string): Promise<void> {
  const total = clients.length;
  const byPid = await workersByPid(port, 2, (seen) => [...seen.values()].reduce((sum, h) => sum + h.connections, 0) === total);
  for (const health of byPid.values()) expect(health.connections).toBeGreaterThan(0);
  clients[0].ws.send(JSON.stringify({ message: text }));
  for (const inbox of clients) expect(await inbox.nextJson(10_000)).toEqual(expect.objectContaining({ message: text }));
}

describe('channelkit serve with WORKERS=2 and no Redis', () => {
  let server: ServerProcess;
  let port: number;
  const clients: Inbox[] = [];

  beforeAll(async () => {
    ({ server, port } = await startTwoWorkers({}));
  }, 90_000);

  afterAll(async () => {
    for (const inbox of clients) inbox.ws.terminate();
    await server.stop();
  }, 60_000);

  test('/healthz says which process and worker answered; clients spread over both and a chat message reaches every one', async () => {
    const byPid = await workersByPid(port, 2);
    expect([...byPid.keys()]).not.toContain(server.child.pid);
    expect(new Set([...byPid.values()].map((h) => h.worker)).size).toBe(2);
    for (const health of byPid.values()) expect(health.layer).toEqual({ state: 'up', backend: 'workers' });
    clients.push(...(await openChat(port, 'lobby', 6)));
    await expectChatSpansWorkers(port, clients, 'hi');
  }, 60_000);

  test('/metrics, whichever worker answers, is the sum over both workers', async () => {
    // The 6 clients are spread over both workers (the test above checked it); each got one frame.
    for (let i = 0; i < 4; i++) {
      const text = await get(port, '/metrics');
      expect(sample(text, 'channelkit_connections')).toBe(6);
      expect(sample(text, 'channelkit_frames_sent_total')).toBe(6);
      expect(sample(text, 'channelkit_frames_received_total')).toBe(1);
    }
  }, 30_000);

  test('kill -9 of one worker: the other keeps serving, the dead one is restarted (a new pid answers) and logged', async () => {
    const before = await workersByPid(port, 2);
    const [victim, survivor] = [...before.keys()];
    process.kill(victim, 'SIGKILL');
    await until(() => server.output.includes('"msg":"worker died; restarting it"'), 20_000, 'the primary to log the death');
    expect(server.output).toMatch(new RegExp(`"pid":${victim},"code":null,"signal":"SIGKILL".*"msg":"worker died; restarting it"`));
    const after = await workersByPid(port, 2, (seen) => [...seen.keys()].some((pid) => pid !== survivor && pid !== victim) && seen.has(survivor));
    const newcomer = [...after.keys()].find((pid) => pid !== survivor && pid !== victim)!;
    expect(newcomer).toBeDefined();
    // The victim's clients were cut; the rest and new ones (spread over both again) all get the next message.
    const alive: Inbox[] = [];
    for (const inbox of clients) if (inbox.ws.readyState === inbox.ws.OPEN) alive.push(inbox);
    expect(alive.length).toBeGreaterThan(0);
    expect(alive.length).toBeLessThan(6);
    const fresh = await openChat(port, 'lobby', 4);
    clients.push(...fresh);
    for (const inbox of alive) while (inbox.pending > 0) await inbox.next();
    await expectChatSpansWorkers(port, [...fresh, ...alive], 'after the crash');
  }, 90_000);

  test('chat history spans the workers, kept in the primary (so a crashed worker lost none): one offset sequence, and `last` and `since` replay on either worker', async () => {
    const room: Inbox[] = [];
    for (let i = 0; i < 4; i++) room.push(new Inbox(await openClient(`ws://127.0.0.1:${port}/ws/chat/history/?last=0`)));
    clients.push(...room);
    let epoch = '';
    for (let n = 1; n <= 4; n++) {
      // From a different client each time: the sends come from both workers, one sequence all the same.
      room[n - 1].ws.send(JSON.stringify({ message: `m${n}` }));
      for (const inbox of room) {
        const frame = (await inbox.nextJson(10_000)) as { message: string; offset: number; epoch: string };
        expect(frame).toMatchObject({ message: `m${n}`, offset: n });
        epoch ||= frame.epoch;
        expect(frame.epoch).toBe(epoch);
      }
    }
    // A worker crashes and is restarted: the history is in the primary, the new worker answers from it too.
    const [victim, survivor] = [...(await within(workersByPid(port, 2), 20_000, 'both workers')).keys()];
    process.kill(victim, 'SIGKILL');
    await within(workersByPid(port, 2, (seen) => seen.has(survivor) && [...seen.keys()].some((pid) => pid !== survivor && pid !== victim)), 25_000, 'the restarted worker');
    // Round-robin puts consecutive connections on different workers: both answer from the primary's history.
    for (let i = 0; i < 2; i++) {
      // The replay can come in the same read as the 101: the inbox listens before the handshake ends.
      const late = await within(openInbox(`ws://127.0.0.1:${port}/ws/chat/history/?last=3`), 10_000, 'a client asking last=3');
      const back = await within(openInbox(`ws://127.0.0.1:${port}/ws/chat/history/?since=2&epoch=${epoch}`), 10_000, 'a client asking since=2');
      clients.push(late, back);
      for (const n of [2, 3, 4]) expect(await late.nextJson(10_000)).toMatchObject({ message: `m${n}`, offset: n, epoch });
      for (const n of [3, 4]) expect(await back.nextJson(10_000)).toMatchObject({ message: `m${n}`, offset: n, epoch });
      expect(await back.nextJson(10_000)).toEqual({ type: 'recovered', recovered: true });
    }
  }, 60_000);

  test('chat presence spans the workers, one table in the primary: each sees both names, and a worker\'s crash shows its member leaving', async () => {
    // Consecutive connections go to different workers (round-robin).
    const ann = await within(openInbox(`ws://127.0.0.1:${port}/ws/chat/presence/?name=Ann`), 10_000, 'Ann');
    const ben = await within(openInbox(`ws://127.0.0.1:${port}/ws/chat/presence/?name=Ben`), 10_000, 'Ben');
    clients.push(ann, ben);
    const names = (frame: unknown, key: 'members' | 'joins' | 'leaves') => ((frame as Record<string, Array<{ name: string }>>)[key] ?? []).map((m) => m.name).sort();
    const annState = await ann.nextJson(10_000);
    expect(annState).toMatchObject({ type: 'presence_state' });
    expect(names(annState, 'members')).toEqual(['Ann']);
    const benState = await ben.nextJson(10_000);
    expect(names(benState, 'members')).toEqual(['Ann', 'Ben']);
    const annDiff = await ann.nextJson(10_000);
    expect(annDiff).toMatchObject({ type: 'presence_diff' });
    expect(names(annDiff, 'joins')).toEqual(['Ben']);
    // One member on each worker; /metrics (whichever answers) sums them.
    expect(sample(await get(port, '/metrics'), 'channelkit_presence_members')).toBe(2);

    const [victim] = [...(await within(workersByPid(port, 2), 20_000, 'both workers')).keys()];
    process.kill(victim, 'SIGKILL');
    const gone = await Promise.race([ann.closed.then(() => ann), ben.closed.then(() => ben)]);
    const [left, stayed] = gone === ann ? ['Ann', ben] : ['Ben', ann];
    const diff = await stayed.nextJson(10_000);
    expect(diff).toMatchObject({ type: 'presence_diff' });
    expect(names(diff, 'leaves')).toEqual([left]);
    expect(stayed.ws.readyState).toBe(stayed.ws.OPEN);
    await within(workersByPid(port, 2, (seen) => !seen.has(victim)), 25_000, 'the restarted worker');
  }, 60_000);

  test('SIGTERM to the primary: every client gets 1001, every worker and the primary exit 0', async () => {
    const open = clients.filter((inbox) => inbox.ws.readyState === inbox.ws.OPEN);
    expect(open.length).toBeGreaterThan(0);
    const code = await server.stop();
    for (const inbox of open) expect((await inbox.closed).code).toBe(1001);
    expect(code).toBe(0);
    expect(server.output).toMatch(/"exitCodes":\[0,0\],"msg":"closed"/);
  }, 60_000);
});

describeRedis('channelkit serve with WORKERS=2 on a private Redis', () => {
  let redis: RedisServer;
  let server: ServerProcess;
  let port: number;
  const clients: Inbox[] = [];

  beforeAll(async () => {
    redis = await RedisServer.start();
    ({ server, port } = await startTwoWorkers({ REDIS_URL: redis.url }));
  }, 90_000);

  afterAll(async () => {
    for (const inbox of clients) inbox.ws.terminate();
    const code = await server.stop();
    await redis.close();
    expect(code).toBe(0);
  }, 60_000);

  test('each worker has its own Redis layer; a chat message reaches clients on both', async () => {
    const byPid = await workersByPid(port, 2);
    for (const health of byPid.values()) expect(health.layer).toEqual({ state: 'up', backend: 'redis-pubsub' });
    clients.push(...(await openChat(port, 'redis-room', 6)));
    await expectChatSpansWorkers(port, clients, 'over redis');
  }, 60_000);
});

describe('startup errors stop the primary instead of a restart loop', () => {
  test.each([
    [{ WORKERS: 'abc' }, [], /WORKERS: "abc" is not a number of worker processes; expected a positive integer \(e\.g\. 4\) or auto/],
    [{}, ['--workers', '1.5'], /--workers: "1.5" is not a number of worker processes/],
  ])('%j %j stops with a message naming the variable, its value and the expected form', async (env, args, message) => {
    const result = await runCli(['serve', ...args], { PORT: '0', ...env });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(message);
  }, 30_000);

  test('a worker that fails before it listens (no `application` export) stops the primary with exit 1, not a restart loop', async () => {
    const result = await runCli(['serve', 'test/fixtures/no-application.ts'], { PORT: '0', WORKERS: '2', LOG_LEVEL: 'info' });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/exports no `application`/);
    expect(result.stdout).toMatch(/"msg":"worker exited before it listened; stopping \(see its error above\)"/);
    expect(result.stdout).not.toMatch(/restarting it/);
  }, 60_000);
});
