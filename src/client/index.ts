// channelkit/client: a typed WebSocket client for channelkit servers, in browsers and in Node.
//
// `Client` keeps one JSON WebSocket open (state machine, backoff with full jitter, a `url` hook called
// before every attempt); `Room` speaks the chat protocol, version 2, on top of it (history on entry,
// recovery by epoch and offset, duplicates dropped, presence). No dependencies and no Node imports:
// a browser loads it as an ES module (the demo server serves it at /static/channelkit-client.js);
// Node passes ws's `WebSocket` class as the `WebSocket` option.
export { Client, CLIENT_DEFAULTS } from './client.js';
export type { ClientEvents, ClientOptions, ClientState, ClosedBy, StateChange, UrlSource } from './client.js';
export { ClientError } from './errors.js';
export type { ClientErrorCode } from './errors.js';
export { Presence } from './presence.js';
export type { PresenceChange, PresenceMember } from './presence.js';
export { RECONNECT_DEFAULTS, backoffDelay, isRetryable } from './reconnect.js';
export type { ReconnectOptions } from './reconnect.js';
export { Room } from './room.js';
export type { RecoveredEvent, RoomEvents, RoomMessage, RoomOptions } from './room.js';
export { StreamTracker } from './stream.js';
export type { StreamPosition } from './stream.js';
export { resolveUrl } from './web-socket.js';
export type { SocketCloseEvent, SocketMessageEvent, WebSocketConstructor, WebSocketLike } from './web-socket.js';
export type { Listener } from './emitter.js';
