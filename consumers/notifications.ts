// The notifications demo: authenticated sockets get broadcasts ("notifications") and their own ("user.<id>").
import { JsonWebsocketConsumer, type LayerMessage } from '../src';

export const BROADCAST_GROUP = 'notifications';
/** A user id: also the demo login's name rule. */
export const USER_ID = /^[A-Za-z0-9_-]{1,50}$/;

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
