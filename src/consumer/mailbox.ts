// A consumer's inbox: frames and layer events handled one at a time, in arrival order.

const EMPTY: never[] = Object.freeze([]) as unknown as never[];

export interface MailboxOwner<T> {
  handleMailboxItem(item: T): unknown;
  mailboxError(error: unknown): void;
}

/**
 * Handles items strictly in order. A handler that returns synchronously costs no promise, which
 * keeps group fan-out (one push per member) cheap; an async one holds the next item until it settles.
 */
export class Mailbox<T> {
  // Allocated on the first push: most connections sit idle with nothing queued.
  private items: (T | undefined)[] = EMPTY;
  private head = 0;
  /** held: until `release()`, items only queue; running: an item is being handled. */
  private state: 'held' | 'idle' | 'running' = 'held';

  /**
   * The owner handles items and hears of their errors; an object, not two closures per mailbox.
   * `capacity` bounds what `offer` takes; `push` is not bounded by it.
   */
  constructor(
    private readonly owner: MailboxOwner<T>,
    private readonly capacity = Infinity,
  ) {}

  /** Items waiting, not counting the one being handled. */
  get size(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    if (this.state === 'idle') {
      // Nothing queued and nothing running: handle it now, without queueing (the fan-out case).
      this.state = 'running';
      if (!this.handle(item)) this.drain();
      return;
    }
    if (this.items === EMPTY) this.items = [];
    this.items.push(item);
  }

  /** Pushes `item` unless `capacity` items are waiting; a mailbox is the layer's listener of its channel. */
  offer(item: T): boolean {
    if (this.size >= this.capacity) return false;
    this.push(item);
    return true;
  }

  /** Starts handling; until then items only queue (a consumer holds events until connect() ends). */
  release(): void {
    if (this.state !== 'held') return;
    this.drain();
  }

  /** Handles one item; true when it returned a promise, which resumes the mailbox once it settles. */
  private handle(item: T): boolean {
    let result: unknown;
    try {
      result = this.owner.handleMailboxItem(item);
    } catch (error) {
      this.owner.mailboxError(error);
      return false;
    }
    if (!(result instanceof Promise)) return false;
    result.then(
      () => this.drain(),
      (error: unknown) => {
        this.owner.mailboxError(error);
        this.drain();
      },
    );
    return true;
  }

  private drain(): void {
    this.state = 'running';
    while (this.head < this.items.length) {
      const item = this.items[this.head] as T;
      this.items[this.head++] = undefined;
      if (this.handle(item)) return;
    }
    // Back to the shared empty array: an idle mailbox holds no room for items.
    this.items = EMPTY;
    this.head = 0;
    this.state = 'idle';
  }
}
