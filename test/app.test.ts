// A user's app tested the way the README shows: imports from 'channelkit' and 'channelkit/testing'
// resolve to this repository's src/ (one copy of the framework), communicators share a layer.
import { InMemoryChannelLayer, NoRoute } from 'channelkit';
import { WebsocketCommunicator } from 'channelkit/testing';
import { HandshakeRejected } from '../src';
import { application } from './fixtures/app-routing';

describe("a user's routing module, importing 'channelkit'", () => {
  test("'channelkit' is this repository's src: its error classes are the framework's own", () => {
    expect(NoRoute.prototype).toBeInstanceOf(HandshakeRejected);
  });

  test('two communicators on one layer see each other through the group; nothing else arrives', async () => {
    const channelLayer = new InMemoryChannelLayer();
    const a = new WebsocketCommunicator(application, '/ws/echo/1/', { channelLayer });
    const b = new WebsocketCommunicator(application, '/ws/echo/2/', { channelLayer });
    expect((await a.connect()).connected).toBe(true);
    expect((await b.connect()).connected).toBe(true);
    a.sendJsonTo({ hi: true });
    expect(await b.receiveJsonFrom()).toEqual({ next: 2, value: { hi: true } });
    expect(await a.receiveJsonFrom()).toEqual({ next: 2, value: { hi: true } });
    expect(await b.receiveNothing()).toBe(true);
    await a.disconnect();
    await b.disconnect();
    await channelLayer.close();
  });
});
