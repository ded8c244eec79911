import { InMemoryChannelLayer, JsonWebsocketConsumer, type LayerMessage, URLRouter, path } from '../../src';
import type { PresenceDiff } from '../../src/layers/presence';
import { WebsocketCommunicator } from '../../src/testing';

let nextId = 0;
/** Joins the room's presence on `{"join": name}`; sends the snapshot and every diff to its client. */
class Present extends JsonWebsocketConsumer {
  override async receiveJson(value: unknown): Promise<void> {
    const { join, leave } = value as { join?: string; leave?: boolean };
    if (join !== undefined) {
      const members = await this.presenceJoin('room', { id: `c${++nextId}`, name: join });
      this.sendJson({ type: 'presence_state', members: members.map((member) => member.name).sort() });
    }
    if (leave) {
      await this.presenceLeave('room');
      this.sendJson({ type: 'left' });
    }
  }
  presenceDiff(message: LayerMessage): void {
    const diff = message as unknown as PresenceDiff;
    this.sendJson({ type: 'presence_diff', joins: diff.joins.map((m) => m.name), leaves: diff.leaves.map((m) => m.name) });
  }
}

async function nextJson(communicator: WebsocketCommunicator): Promise<Record<string, unknown>> {
  return JSON.parse(String(await communicator.receiveFrom(2000))) as Record<string, unknown>;
}

describe('Consumer.presenceJoin', () => {
  test('members see each other come and go (never their own join), and a disconnect leaves automatically', async () => {
    const layer = new InMemoryChannelLayer();
    const app = URLRouter([path('ws/present/', Present)]);
    const [ann, ben] = [
      new WebsocketCommunicator(app, '/ws/present/', { channelLayer: layer }),
      new WebsocketCommunicator(app, '/ws/present/', { channelLayer: layer }),
    ];
    await ann.connect();
    await ben.connect();
    ann.sendTo(JSON.stringify({ join: 'Ann' }));
    expect(await nextJson(ann)).toEqual({ type: 'presence_state', members: ['Ann'] });
    ben.sendTo(JSON.stringify({ join: 'Ben' }));
    expect(await nextJson(ben)).toEqual({ type: 'presence_state', members: ['Ann', 'Ben'] });
    expect(await nextJson(ann)).toEqual({ type: 'presence_diff', joins: ['Ben'], leaves: [] });
    await ben.disconnect();
    expect(await nextJson(ann)).toEqual({ type: 'presence_diff', joins: [], leaves: ['Ben'] });
    expect(await layer.presenceCount('room')).toBe(1);
    ann.sendTo(JSON.stringify({ leave: true }));
    expect(await nextJson(ann)).toEqual({ type: 'left' });
    expect(await layer.presenceCount('room')).toBe(0);
    await ann.disconnect();
    await layer.close();
  });
});
