// Where a room's client stands in the room's stream (epoch, offset), and the rule that drops duplicates.

/** A point in a room's stream: `offset` counts the room's messages (+1 each); `epoch` names that count. */
export interface StreamPosition {
  epoch: string;
  offset: number;
}

/**
 * The last (epoch, offset) handed to the app. A message of the same epoch at or below that offset is a
 * duplicate (a replay that overlaps what arrived live, a server that sends one twice) and is dropped;
 * a message of another epoch starts the count again (the room's history was lost and restarted).
 * Frames without both fields (a channels_redis group send) are not counted and always pass.
 */
export class StreamTracker {
  private epoch: string | null = null;
  private offset = 0;
  /** Messages dropped as duplicates, since this tracker was made. */
  duplicates = 0;

  get position(): StreamPosition | null {
    return this.epoch === null ? null : { epoch: this.epoch, offset: this.offset };
  }

  /** Whether to hand this message frame to the app; counts it when so. */
  accept(frame: { offset?: unknown; epoch?: unknown }): boolean {
    const { offset, epoch } = frame;
    if (typeof epoch !== 'string' || typeof offset !== 'number' || !Number.isSafeInteger(offset)) return true;
    if (epoch === this.epoch && offset <= this.offset) {
      this.duplicates++;
      return false;
    }
    this.epoch = epoch;
    this.offset = offset;
    return true;
  }

  /**
   * The server could not recover from our position; the room is now at (epoch, offset). `reloading`:
   * the app will get the last messages again, so only an epoch change resets the count (what was
   * shown of this epoch stays shown once); otherwise the live stream goes on from there.
   */
  lost(epoch: string, offset: number, reloading: boolean): void {
    if (reloading) {
      if (epoch !== this.epoch) {
        this.epoch = epoch;
        this.offset = 0;
      }
      return;
    }
    this.epoch = epoch;
    this.offset = offset;
  }
}
