// The one rule that maps a layer message's type to a consumer method: 'chat.message' -> chatMessage.

/** The longest part of a type that an error quotes: types come from other processes, any size. */
const QUOTED = 100;

/** A type as an error may quote it: at most QUOTED characters, with the length when longer. */
function describeType(type: unknown): string {
  if (type === undefined) return '(none)';
  if (type === null) return '(null)';
  if (Array.isArray(type)) return '(an array)';
  if (typeof type !== 'string') return `(${typeof type === 'object' ? 'an' : 'a'} ${typeof type})`;
  if (type.length <= QUOTED) return JSON.stringify(type);
  return `${JSON.stringify(`${type.slice(0, QUOTED)}…`)} (${type.length} characters)`;
}

export class UnknownMessageType extends Error {
  readonly code = 'UNKNOWN_MESSAGE_TYPE';
  /**
   * False when this consumer class already logged this type within the minute (see UnknownTypeLog):
   * the error still closes the socket, but one hostile event sent to 200 members is one log line.
   */
  log = true;
  /** Unknown-type errors of this consumer class not logged since the previous one that was. */
  suppressed = 0;

  /** `reason` says what to do; the type is quoted truncated, never whole. */
  constructor(type: unknown, consumer: string, reason: string) {
    super(`${consumer} cannot handle message type ${describeType(type)}: ${reason}`);
    this.name = 'UnknownMessageType';
  }
}

/** False for an unknown-type error already logged within the minute (see UnknownTypeLog); true for any other error. */
export function shouldLog(error: unknown): boolean {
  return !(error instanceof UnknownMessageType) || error.log;
}

/**
 * Decides which unknown-type errors are logged: the first of each type per window (a minute), at
 * most `maxTypes` types per window; the rest are counted and the count is carried by the next
 * logged one. Keys are bounded (see `typeKey`), so memory is too.
 */
export class UnknownTypeLog {
  private readonly seen = new Set<string>();
  private windowEnd = -Infinity;
  private suppressed = 0;

  constructor(
    private readonly windowMs = 60_000,
    private readonly maxTypes = 100,
  ) {}

  /** Marks `error` as logged (with the count silenced before it) or not. */
  admit(error: UnknownMessageType, type: unknown, now = Date.now()): void {
    if (now >= this.windowEnd) {
      this.seen.clear();
      this.windowEnd = now + this.windowMs;
    }
    const key = typeKey(type);
    if (this.seen.has(key) || this.seen.size >= this.maxTypes) {
      error.log = false;
      this.suppressed++;
      return;
    }
    this.seen.add(key);
    error.suppressed = this.suppressed;
    this.suppressed = 0;
  }
}

/** A bounded key per type: long types are told apart by their start and length only. */
function typeKey(type: unknown): string {
  if (typeof type !== 'string') return `\0${type === null ? 'null' : typeof type}`;
  return type.length <= QUOTED ? type : `${type.slice(0, QUOTED)}\0${type.length}`;
}

const TYPE = /^[A-Za-z][A-Za-z0-9]*(?:[._][A-Za-z0-9]+)*$/;
const names = new Map<string, string>();

/**
 * Dots and underscores separate words; words after the first are capitalised:
 * 'chat.message' -> 'chatMessage', 'user_joined.now' -> 'userJoinedNow'. Returns null for a type
 * that is not words separated by '.' or '_'.
 */
export function handlerName(type: string): string | null {
  const cached = names.get(type);
  if (cached !== undefined) return cached;
  if (!TYPE.test(type)) return null;
  const words = type.split(/[._]/);
  const name = words[0] + words.slice(1).map((word) => word[0].toUpperCase() + word.slice(1)).join('');
  // Types come from other processes: bound the cache (count and key size) so odd traffic cannot grow it.
  if (names.size < 10_000 && type.length <= QUOTED) names.set(type, name);
  return name;
}
