import { Writable } from 'node:stream';
import pino from 'pino';
import { workers } from '../../routing';
import { ChannelNameRouter, Consumer, InMemoryChannelLayer, type LayerMessage, Worker, createLogger } from '../../src';
import { until } from '../support/wait';

const logger = createLogger('silent');

class Jobs extends Consumer {
  static done: unknown[] = [];
  async thumbnailsGenerate(job: LayerMessage): Promise<void> {
    if (job.fail) throw new Error('bad job');
    // A job that takes time: a second job must wait for it (one at a time, in order).
    await new Promise((resolve) => setTimeout(resolve, 5));
    Jobs.done.push(job.id);
  }
}

describe('Worker and ChannelNameRouter', () => {
  test('handles jobs sent to its channel one at a time, in order, and survives a failing job', async () => {
    const layer = new InMemoryChannelLayer();
    const worker = new Worker({ channelLayer: layer, logger }, { router: new ChannelNameRouter({ 'thumbnails.generate': Jobs }) });
    worker.start();
    await layer.send('thumbnails.generate', { type: 'thumbnails.generate', id: 1 });
    await layer.send('thumbnails.generate', { type: 'thumbnails.generate', id: 2, fail: true });
    await layer.send('thumbnails.generate', { type: 'thumbnails.generate', id: 3 });
    await until(() => Jobs.done.length >= 2, 5000, 'two jobs done');
    expect(Jobs.done).toEqual([1, 3]);
    await worker.close();
    await layer.close();
  });

  test('routing a channel with an invalid name, or running an unrouted one, is a clear error', () => {
    expect(() => new ChannelNameRouter({ 'bad name': Jobs })).toThrow(/invalid channel name/);
    const layer = new InMemoryChannelLayer();
    expect(() => new Worker({ channelLayer: layer, logger }, { router: workers, channels: ['nope'] })).toThrow(/no consumer routed/);
    void layer.close();
  });

  test('the demo announcement worker turns a job into a broadcast notification', async () => {
    const layer = new InMemoryChannelLayer();
    const listener = await layer.newChannel();
    await layer.groupAdd('notifications', listener);
    const worker = new Worker({ channelLayer: layer, logger }, { router: workers });
    worker.start();
    await layer.send('notifications.announce', { type: 'announce', title: 'Deploy', body: 'at 5pm' });
    expect(await layer.receive(listener)).toEqual({ type: 'notification.message', title: 'Deploy', body: 'at 5pm' });
    await worker.close();
    await layer.close();
  });

  test('logs each job it handles at debug level with channel and type, never the body', async () => {
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk: Buffer, _encoding, done) => (lines.push(chunk.toString()), done()) });
    const debugLogger = pino({ level: 'debug' }, sink);
    const layer = new InMemoryChannelLayer();
    const worker = new Worker({ channelLayer: layer, logger: debugLogger }, { router: new ChannelNameRouter({ 'thumbnails.generate': Jobs }) });
    worker.start();
    const before = Jobs.done.length;
    await layer.send('thumbnails.generate', { type: 'thumbnails.generate', id: 9, secret: 'body-text' });
    await until(() => Jobs.done.length > before, 5000, 'the job done');
    await worker.close();
    await layer.close();
    const handled = lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line.msg === 'worker handling job');
    expect(handled).toEqual([expect.objectContaining({ level: 20, channel: 'thumbnails.generate', type: 'thumbnails.generate' })]);
    expect(lines.join('')).not.toContain('body-text');
  });
});
