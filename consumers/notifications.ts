// The notifications demo: authenticated sockets get broadcasts ("notifications") and their own ("user.<id>").
import type { IncomingMessage, ServerResponse } from 'node:http';
import { JsonWebsocketConsumer, type LayerMessage, type Runtime, signToken } from '../src';

export const BROADCAST_GROUP = 'notifications';
const USER_ID = /^[A-Za-z0-9_-]{1,50}$/;

/** The group of one user; ids are checked so that no client-chosen id can name another group. */
export function userGroup(userId: string): string {
  if (!USER_ID.test(userId)) throw new Error(`invalid user id ${JSON.stringify(userId)}`);
  return `user.${userId}`;
}

/**
 * Refuses anonymous connections (HTTP 403), then joins the broadcast group and the user's own group
 * only: the user id comes from the verified token, never from the client's frames.
 */
export class NotificationConsumer extends JsonWebsocketConsumer {
  override async connect(): Promise<void> {
    const user = this.scope.user;
    if (!user || !USER_ID.test(user.id)) {
      this.close(4003, 'authentication required');
      return;
    }
    await this.groupAdd(BROADCAST_GROUP);
    await this.groupAdd(userGroup(user.id));
    this.accept();
  }

  override receiveJson(): void {
    this.sendJson({ error: 'this socket only receives notifications' });
  }

  notificationMessage(event: LayerMessage): void {
    this.sendJson({ type: 'notification', title: event.title, body: event.body });
  }
}

/** POST /notifications/token {"user": "alice"}: a demo login that issues a signed token. */
export async function issueToken(req: IncomingMessage, res: ServerResponse, secret: string): Promise<void> {
  const body = await readJson(req);
  const user = (body as { user?: unknown } | null)?.user;
  if (typeof user !== 'string' || !USER_ID.test(user)) {
    return json(res, 400, { error: 'send {"user": "<1-50 letters, digits, - or _>"}' });
  }
  json(res, 200, { user, token: signToken(user, secret, 3600) });
}

/**
 * POST /notifications/push {"title", "body", "user"?}: a backend pushes to one user or everyone.
 * Only from this machine: in production a backend uses the publisher or the CLI instead.
 */
export async function pushNotification(req: IncomingMessage, res: ServerResponse, runtime: Runtime): Promise<void> {
  const address = req.socket.remoteAddress ?? '';
  if (address !== '127.0.0.1' && address !== '::1' && address !== '::ffff:127.0.0.1') {
    return json(res, 403, { error: 'push is allowed from localhost only' });
  }
  const body = (await readJson(req)) as { title?: unknown; body?: unknown; user?: unknown } | null;
  if (typeof body?.title !== 'string' || typeof body.body !== 'string' || (body.user !== undefined && typeof body.user !== 'string')) {
    return json(res, 400, { error: 'send {"title": string, "body": string, "user"?: string}' });
  }
  let group: string;
  try {
    group = body.user === undefined ? BROADCAST_GROUP : userGroup(body.user);
  } catch (error) {
    return json(res, 400, { error: (error as Error).message });
  }
  await runtime.channelLayer.groupSend(group, { type: 'notification.message', title: body.title, body: body.body });
  json(res, 202, { group });
}

async function readJson(req: IncomingMessage, limit = 64 * 1024): Promise<unknown> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) return null;
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString());
  } catch {
    return null;
  }
}

function json(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}
