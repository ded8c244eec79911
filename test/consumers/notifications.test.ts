import { application, secret } from '../../routing';
import { InMemoryChannelLayer, signToken } from '../../src';
import { WebsocketCommunicator } from '../../src/testing';

describe('NotificationConsumer', () => {
  let layer: InMemoryChannelLayer;
  beforeEach(() => (layer = new InMemoryChannelLayer()));
  afterEach(() => layer.close());

  const login = async (user: string) => {
    const communicator = new WebsocketCommunicator(application, `/ws/notifications/?token=${signToken(user, secret)}`, {
      channelLayer: layer,
    });
    expect((await communicator.connect()).connected).toBe(true);
    return communicator;
  };

  test('a user gets broadcasts and its own notifications, not another user\'s', async () => {
    const [alice, bob] = [await login('alice'), await login('bob')];
    await layer.groupSend('notifications', { type: 'notification.message', title: 'All', body: 'everyone' });
    await layer.groupSend('user.alice', { type: 'notification.message', title: 'Hi', body: 'alice only' });
    expect(await alice.receiveJsonFrom()).toEqual({ type: 'notification', title: 'All', body: 'everyone' });
    expect(await alice.receiveJsonFrom()).toEqual({ type: 'notification', title: 'Hi', body: 'alice only' });
    expect(await bob.receiveJsonFrom()).toEqual({ type: 'notification', title: 'All', body: 'everyone' });
    expect(await bob.receiveNothing()).toBe(true);
    await Promise.all([alice.disconnect(), bob.disconnect()]);
  });

  test('no token, a forged token or an expired one is refused with 403', async () => {
    const forged = signToken('alice', 'not-the-secret');
    const expired = signToken('alice', secret, 60, Date.now() - 120_000);
    for (const query of ['', `?token=${forged}`, `?token=${expired}`, '?token=garbage']) {
      const communicator = new WebsocketCommunicator(application, `/ws/notifications/${query}`, { channelLayer: layer });
      expect(await communicator.connect()).toEqual({ connected: false, status: 403 });
    }
  });

  test('the token is also read from a cookie and from Authorization: Bearer', async () => {
    const token = signToken('carol', secret);
    const variants: Record<string, string>[] = [{ cookie: `theme=dark; token=${token}` }, { authorization: `Bearer ${token}` }];
    for (const headers of variants) {
      const communicator = new WebsocketCommunicator(application, '/ws/notifications/', { channelLayer: layer, headers });
      expect((await communicator.connect()).connected).toBe(true);
      await layer.groupSend('user.carol', { type: 'notification.message', title: 't', body: 'b' });
      expect(await communicator.receiveJsonFrom()).toMatchObject({ title: 't' });
      await communicator.disconnect();
    }
  });

  test('a token in the query wins over a stale cookie; Authorization: Bearer wins over both', async () => {
    const stale = signToken('carol', secret, 60, Date.now() - 120_000);
    const [dave, erin] = [signToken('dave', secret), signToken('erin', secret)];
    const cases: [string, Record<string, string>, string][] = [
      [`?token=${dave}`, { cookie: `token=${stale}` }, 'dave'],
      [`?token=${dave}`, { cookie: `token=${stale}`, authorization: `Bearer ${erin}` }, 'erin'],
    ];
    for (const [query, headers, user] of cases) {
      const communicator = new WebsocketCommunicator(application, `/ws/notifications/${query}`, { channelLayer: layer, headers });
      expect((await communicator.connect()).connected).toBe(true);
      await layer.groupSend(`user.${user}`, { type: 'notification.message', title: user, body: 'b' });
      expect(await communicator.receiveJsonFrom()).toMatchObject({ title: user });
      await communicator.disconnect();
    }
  });

  test('a foreign Origin is refused with 403 before any consumer runs', async () => {
    const communicator = new WebsocketCommunicator(application, `/ws/notifications/?token=${signToken('a', secret)}`, {
      channelLayer: layer,
      headers: { origin: 'https://evil.example' },
    });
    expect(await communicator.connect()).toEqual({ connected: false, status: 403 });
  });
});
