// The base consumer: layer wiring, group membership and handler dispatch, shared by socket and worker consumers.
import type { Runtime } from '../application';
import { UnknownMessageType, UnknownTypeLog, handlerName, shouldLog } from './dispatch';
import type { ChannelLayer, LayerMessage } from '../layers/layer';
import type { JoinFrom, JoinResult } from '../layers/history';
import type { PresenceMember } from '../layers/presence';
import type { Logger } from '../logger';

/**
 * Names of every framework method ('close', 'send', 'connect', 'receiveJson'...): never handlers,
 * even where the application's class overrides them, as it does `connect` and `receive`. A layer
 * event must not re-run a consumer's lifecycle (a group send of {type: 'connect'} would re-run every
 * member's connect()).
 */
const frameworkNames = new Set<string>();

/** Marks a framework class so that a message type can never call its methods ('close', 'send'...). */
export function markFrameworkClass(cls: { prototype: object }): void {
  for (const name of Object.getOwnPropertyNames(cls.prototype)) frameworkNames.add(name);
}
markFrameworkClass(Object);

/**
 * Lifecycle words, as Channels' ASGI events: `receive`, `receiveJson`, `websocketConnect`... are
 * never handlers, whether or not a framework class defines them. A word that only begins with the
 * same letters ('receivedAck') is the application's.
 */
const LIFECYCLE = /^(?:connect|disconnect|receive|websocket)(?:[A-Z]|$)/;

type Handler = (message: LayerMessage) => unknown;
const NO_GROUPS: readonly string[] = Object.freeze([]);
function nothing(): void {}

/** A consumer's joined groups as a list, whichever form they are kept in. */
function listOf(joined: string | readonly string[]): readonly string[] {
  return typeof joined === 'string' ? [joined] : joined;
}
const handlersByClass = new WeakMap<object, Map<string, string | null>>();
/** Per consumer class: an unknown type is logged once per type and minute (see UnknownTypeLog). */
const unknownTypeLogs = new WeakMap<object, UnknownTypeLog>();
/** Types longer than this are not cached: no handler name is that long, and keys would pin memory. */
const CACHED_TYPE_LENGTH = 100;
/**
 * The handler found last, with its class and type. The members of a group send resolve one type (the
 * string their shared message holds) on one class one after the other: an identity check answers them
 * all after the first, where the maps would hash and compare a decoded string per member.
 */
const lastResolved: { owner: object | null; type: unknown; name: string } = { owner: null, type: null, name: '' };

/**
 * One consumer per connection (or per worker channel). It owns `channelName` on the layer and
 * handles the layer messages sent to it by type: `{ type: 'chat.message' }` calls `chatMessage(message)`.
 */
export abstract class Consumer {
  /** Groups every instance joins before `connect()` and leaves after `disconnect()`. */
  static groups: string[] = [];

  /** This consumer's own address on the layer; any process can `send()` to it. */
  channelName = '';
  /** The process's layer and logger, shared: one pointer per consumer rather than two. */
  private readonly runtime: Runtime;
  /**
   * Groups joined. Most consumers are in one: that is kept as the name alone, with no array (see
   * "Where the bytes go" in bench/README.md); several as an exact-size array, replaced rather than pushed to.
   */
  private joined: string | readonly string[] = NO_GROUPS;
  /** Groups whose presence this consumer joined, kept as `joined` is: one shared empty array until used. */
  private present: string | readonly string[] = NO_GROUPS;

  constructor(runtime: Runtime) {
    this.runtime = runtime;
  }

  get channelLayer(): ChannelLayer {
    return this.runtime.channelLayer;
  }

  protected get logger(): Logger {
    return this.runtime.logger;
  }

  /** Joins `group` with this consumer's channel; it is left automatically at the end. */
  async groupAdd(group: string): Promise<void> {
    await this.channelLayer.groupAdd(group, this.channelName);
    this.remember(group);
  }

  /**
   * `groupAdd` for a group with history, plus its replay (`{ last: n }` or `{ since: position }`,
   * see ChannelLayer.groupJoin). Send `messages` to the client yourself, before anything else: live
   * messages reach this consumer from `position.offset + 1` on. Left automatically at the end.
   */
  async groupJoin(group: string, from: JoinFrom): Promise<JoinResult> {
    const result = await this.channelLayer.groupJoin(group, this.channelName, from);
    this.remember(group);
    return result;
  }

  /** Records a joined group, to leave it at the end. */
  private remember(group: string): void {
    const joined = listOf(this.joined);
    if (!joined.includes(group)) this.joined = joined.length === 0 ? group : joined.concat(group);
  }

  async groupDiscard(group: string): Promise<void> {
    const rest = listOf(this.joined).filter((joined) => joined !== group);
    this.joined = rest.length === 1 ? rest[0] : rest;
    await this.channelLayer.groupDiscard(group, this.channelName);
  }

  /**
   * Makes this connection `member` of `group`'s presence, in every process, until `presenceLeave`
   * or the end of the connection; returns the group's members (itself included). Changes then
   * arrive as `{ type: 'presence.diff', group, joins, leaves }` messages: define `presenceDiff(message)`.
   */
  async presenceJoin(group: string, member: PresenceMember): Promise<PresenceMember[]> {
    // Recorded first: a disconnect while the join is on its way must still leave.
    const present = listOf(this.present);
    if (!present.includes(group)) this.present = present.length === 0 ? group : present.concat(group);
    try {
      return await this.channelLayer.presenceJoin(group, this.channelName, member);
    } catch (error) {
      const rest = listOf(this.present).filter((joined) => joined !== group);
      this.present = rest.length === 1 ? rest[0] : rest;
      throw error;
    }
  }

  async presenceLeave(group: string): Promise<void> {
    const rest = listOf(this.present).filter((joined) => joined !== group);
    this.present = rest.length === 1 ? rest[0] : rest;
    await this.channelLayer.presenceLeave(group, this.channelName);
  }

  /** Sends `message` to every member of `group` in every process (this consumer included, if a member). */
  groupSend(group: string, message: LayerMessage): Promise<void> {
    return this.channelLayer.groupSend(group, message);
  }

  /**
   * Calls the handler that `message.type` names; throws `UnknownMessageType` when there is none,
   * including for a message without `type` (valid on the layer, but it names no handler).
   */
  dispatch(message: LayerMessage): unknown {
    const name = this.resolveHandler(message.type);
    return (this as unknown as Record<string, Handler>)[name](message);
  }

  /**
   * Whether a handler's `error` is worth a log line: not an unknown type this class already logged
   * within the minute (a hostile type sent to every member would otherwise be one line per member).
   */
  protected shouldLog(error: unknown): boolean {
    return shouldLog(error);
  }

  /** Joins the class's static groups. */
  protected async joinStaticGroups(): Promise<void> {
    const groups = (this.constructor as typeof Consumer).groups;
    await Promise.all(groups.map((group) => this.groupAdd(group)));
  }

  /** Whether the class declares static groups (most do not, and skip the join step altogether). */
  protected get hasStaticGroups(): boolean {
    return (this.constructor as typeof Consumer).groups.length > 0;
  }

  /** Leaves every group and presence joined; a layer that is down is logged, not thrown, so teardown completes. */
  protected leaveGroups(): Promise<void> {
    const joined = this.joined;
    const present = this.present;
    this.joined = NO_GROUPS;
    this.present = NO_GROUPS;
    // The usual consumer, in one group and no presence: one leave, no list of them.
    if (typeof joined === 'string' && present === NO_GROUPS) return this.leave(this.channelLayer.groupDiscard(joined, this.channelName));
    // Every leave starts at once, each with its failure handled (logged) from the start.
    const leaving: Promise<void>[] = [];
    for (const group of listOf(joined)) leaving.push(this.leave(this.channelLayer.groupDiscard(group, this.channelName)));
    for (const group of listOf(present)) leaving.push(this.leave(this.channelLayer.presenceLeave(group, this.channelName)));
    return Promise.all(leaving).then(nothing);
  }

  /** One leave (of a group or a presence), its failure logged: teardown goes on. */
  private async leave(leaving: Promise<void>): Promise<void> {
    try {
      await leaving;
    } catch (error) {
      this.logger.warn({ err: error }, 'could not leave group');
    }
  }

  private resolveHandler(type: unknown): string {
    if (type === lastResolved.type && this.constructor === lastResolved.owner) return lastResolved.name;
    let cache = handlersByClass.get(this.constructor);
    if (!cache) handlersByClass.set(this.constructor, (cache = new Map()));
    let name = typeof type === 'string' ? cache.get(type) : null;
    if (name === undefined) {
      name = this.findHandler(type as string);
      if (cache.size < 1000 && (type as string).length <= CACHED_TYPE_LENGTH) cache.set(type as string, name);
    }
    if (name === null || name === undefined) throw this.unknownType(type);
    lastResolved.owner = this.constructor;
    lastResolved.type = type;
    lastResolved.name = name;
    return name;
  }

  private unknownType(type: unknown): UnknownMessageType {
    const error = new UnknownMessageType(type, this.constructor.name, whyNoHandler(type));
    let log = unknownTypeLogs.get(this.constructor);
    if (!log) unknownTypeLogs.set(this.constructor, (log = new UnknownTypeLog()));
    log.admit(error, type);
    return error;
  }

  private findHandler(type: string): string | null {
    const name = handlerName(type);
    if (name === null || frameworkNames.has(name) || LIFECYCLE.test(name)) return null;
    return typeof (this as unknown as Record<string, unknown>)[name] === 'function' ? name : null;
  }
}

/** The remedy for a type with no handler. */
function whyNoHandler(type: unknown): string {
  // Any map is a layer message (Channels' spec); only dispatch needs a type.
  if (type === undefined) return 'message has no type';
  if (typeof type !== 'string') return 'type must be a string';
  // The reason never quotes more of a type than the message does.
  if (type.length > CACHED_TYPE_LENGTH) return 'no handler has a name that long';
  const name = handlerName(type);
  if (name === null) return 'type must be words joined by "." or "_"';
  if (frameworkNames.has(name) || LIFECYCLE.test(name)) return `${name} is a lifecycle or framework method, never a handler; use another type`;
  return `define a method ${name}(message)`;
}

markFrameworkClass(Consumer);
