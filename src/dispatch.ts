// The one rule that maps a layer message's type to a consumer method: 'chat.message' -> chatMessage.

export class UnknownMessageType extends Error {
  readonly code = 'UNKNOWN_MESSAGE_TYPE';
  constructor(type: unknown, consumer: string, reason: string) {
    super(`${consumer} cannot handle message type ${JSON.stringify(type)}: ${reason}`);
    this.name = 'UnknownMessageType';
  }
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
  // Types come from other processes: bound the cache so odd traffic cannot grow it forever.
  if (names.size < 10_000) names.set(type, name);
  return name;
}
