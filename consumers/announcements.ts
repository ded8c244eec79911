// A demo background worker: jobs on channel 'notifications.announce' become notifications for everyone.
import { Consumer, type LayerMessage } from '../src';
import { BROADCAST_GROUP } from './notifications';

/** Handles `{ type: 'announce', title, body }` sent to 'notifications.announce' by any process. */
export class AnnouncementWorker extends Consumer {
  async announce(job: LayerMessage): Promise<void> {
    if (typeof job.title !== 'string' || typeof job.body !== 'string') {
      throw new Error('announce needs string title and body');
    }
    await this.groupSend(BROADCAST_GROUP, { type: 'notification.message', title: job.title, body: job.body });
  }
}
