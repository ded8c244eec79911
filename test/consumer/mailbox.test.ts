import { Mailbox, type MailboxOwner } from '../../src/consumer/mailbox';
import { until } from '../support/wait';

/** Records what it handles; items named 'async:x' take a few milliseconds, 'throw:x' fail. */
class Recorder implements MailboxOwner<string> {
  log: string[] = [];
  errors: string[] = [];
  inside = 0;
  maxInside = 0;
  onHandle: ((item: string) => void) | null = null;

  handleMailboxItem(item: string): unknown {
    this.inside++;
    this.maxInside = Math.max(this.maxInside, this.inside);
    this.log.push(item);
    this.onHandle?.(item);
    if (item.startsWith('throw:')) {
      this.inside--;
      throw new Error(item);
    }
    if (item.startsWith('async:')) {
      return new Promise<void>((resolve) =>
        setTimeout(() => {
          this.log.push(`${item} done`);
          this.inside--;
          resolve();
        }, 5),
      );
    }
    this.inside--;
    return undefined;
  }

  mailboxError(error: unknown): void {
    this.errors.push((error as Error).message);
  }
}

describe('Mailbox', () => {
  test('holds items until release(), then handles them in order', () => {
    const owner = new Recorder();
    const mailbox = new Mailbox(owner);
    mailbox.push('a');
    mailbox.push('b');
    expect(owner.log).toEqual([]);
    expect(mailbox.size).toBe(2);
    mailbox.release();
    expect(owner.log).toEqual(['a', 'b']);
    expect(mailbox.size).toBe(0);
  });

  test('a synchronous handler runs at once; an async one holds the next items until it settles', async () => {
    const owner = new Recorder();
    const mailbox = new Mailbox(owner);
    mailbox.release();
    mailbox.push('a');
    expect(owner.log).toEqual(['a']);
    mailbox.push('async:b');
    mailbox.push('c');
    mailbox.push('async:d');
    mailbox.push('e');
    expect(owner.log).toEqual(['a', 'async:b']);
    expect(mailbox.size).toBe(3);
    await until(() => owner.log.includes('e'), 5000, "item 'e' handled");
    expect(owner.log).toEqual(['a', 'async:b', 'async:b done', 'c', 'async:d', 'async:d done', 'e']);
    expect(owner.maxInside).toBe(1);
  });

  test('an item pushed from inside a handler waits for that handler', () => {
    const owner = new Recorder();
    const mailbox = new Mailbox(owner);
    mailbox.release();
    owner.onHandle = (item) => {
      if (item === 'outer') mailbox.push('inner');
    };
    mailbox.push('outer');
    mailbox.push('after');
    expect(owner.log).toEqual(['outer', 'inner', 'after']);
    expect(owner.maxInside).toBe(1);
  });

  test('a handler that throws or rejects is reported and the next items still run', async () => {
    const owner = new Recorder();
    const mailbox = new Mailbox(owner);
    mailbox.release();
    mailbox.push('throw:x');
    mailbox.push('y');
    expect(owner.log).toEqual(['throw:x', 'y']);
    expect(owner.errors).toEqual(['throw:x']);

    const rejecting: MailboxOwner<string> = {
      handleMailboxItem: (item) => (item === 'bad' ? Promise.reject(new Error('rejected')) : owner.log.push(item)),
      mailboxError: (error) => owner.errors.push((error as Error).message),
    };
    const second = new Mailbox(rejecting);
    second.release();
    second.push('bad');
    second.push('z');
    await until(() => owner.log.includes('z') && owner.errors.length === 2, 5000, "item 'z' handled and 'bad' reported");
    expect(owner.errors).toEqual(['throw:x', 'rejected']);
    expect(owner.log.at(-1)).toBe('z');
  });

  test('offer() refuses past capacity; push() does not', async () => {
    const owner = new Recorder();
    const mailbox = new Mailbox(owner, 2);
    mailbox.release();
    mailbox.push('async:busy');
    expect(mailbox.offer('1')).toBe(true);
    expect(mailbox.offer('2')).toBe(true);
    expect(mailbox.offer('3')).toBe(false);
    mailbox.push('4');
    expect(mailbox.size).toBe(3);
    await until(() => owner.log.includes('4'), 5000, "item '4' handled");
    expect(owner.log).toEqual(['async:busy', 'async:busy done', '1', '2', '4']);
    expect(mailbox.offer('5')).toBe(true);
  });
});
