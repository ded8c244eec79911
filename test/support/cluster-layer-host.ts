// A real node:cluster with the workers layer: worker 1 sends to a channel of worker 2 and group-sends; worker 2 reports.
// Run by test/cluster/relay.test.ts; prints one JSON line `{"received": [...]}` and exits 0.
import cluster from 'node:cluster';
import { type WorkerBatch, isRelayMessage } from '../../src/cluster/messages';
import { WorkersRelay } from '../../src/cluster/relay';
import { processEndpoint } from '../../src/cluster/worker';
import type { LayerMessage } from '../../src/layers/layer';
import { WorkersChannelLayer } from '../../src/layers/workers';

const SENDS = 50;

type Control = { ready: string } | { start: string } | { received: LayerMessage[] };

function primary(): void {
  cluster.setupPrimary({ serialization: 'advanced' });
  const relay = new WorkersRelay();
  const [sender, receiver] = [cluster.fork(), cluster.fork()];
  for (const worker of [sender, receiver]) {
    relay.attach(worker.id, { send: (message) => worker.isConnected() && worker.send(message) });
    worker.on('message', (message: unknown) => {
      if (isRelayMessage(message)) return relay.handle(worker.id, message as WorkerBatch);
      const control = message as Control;
      if ('ready' in control) sender.send({ start: control.ready });
      if ('received' in control) {
        const received = control.received.map((m) => ({ ...m, bytes: m.bytes instanceof Uint8Array ? Array.from(m.bytes) : m.bytes }));
        process.stdout.write(`${JSON.stringify({ received })}\n`);
        for (const w of [sender, receiver]) w.kill();
      }
    });
  }
}

async function worker(): Promise<void> {
  const layer = new WorkersChannelLayer({ endpoint: processEndpoint(), workerId: cluster.worker!.id });
  if (cluster.worker!.id === 2) {
    const channel = await layer.newChannel();
    const received: LayerMessage[] = [];
    await layer.listen(channel, {
      offer(message) {
        received.push(message);
        if (received.length === SENDS + 1) process.send!({ received });
        return true;
      },
    });
    await layer.groupAdd('both', channel);
    process.send!({ ready: channel });
    return;
  }
  process.on('message', (message: unknown) => {
    if (isRelayMessage(message) || !('start' in (message as Control))) return;
    const channel = (message as { start: string }).start;
    void (async () => {
      for (let n = 0; n < SENDS; n++) await layer.send(channel, { type: 'seq', n, bytes: new Uint8Array([n, 255]) });
      await layer.groupSend('both', { type: 'group', text: 'héllo ✓' });
    })();
  });
}

if (cluster.isPrimary) primary();
else void worker();
