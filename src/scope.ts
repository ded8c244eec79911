// The facts of one connection, built by the server and enriched by middleware and the router.
import type { IncomingHttpHeaders } from 'node:http';

/** One route parameter: a string, or a number from the `int` converter (`:id(int)`). */
export type RouteParamValue = string | number;

/**
 * Route parameters: `path('ws/chat/:room/', ...)` puts `{ room: 'lobby' }` here, `:id(int)` a number.
 * Type them exactly with `RouteParamsOf<pattern>` as the consumer's type argument.
 */
export type RouteParams = Record<string, RouteParamValue>;

export interface Scope<Params extends RouteParams = RouteParams> {
  type: 'websocket';
  /** Decoded request path, with its leading slash: '/ws/chat/lobby/'. */
  path: string;
  /** What nested routers have not matched yet; the router reads and advances it. */
  pathRemaining: string;
  /** Route parameters collected by every router level. */
  params: Params;
  /** Patterns matched so far, joined: 'ws/chat/:room/'. Logged on connect and disconnect. */
  route: string;
  /** The query string's parameters; read-only (connections with no query share one empty instance). */
  query: ReadonlyQuery;
  /**
   * Lower-cased request headers, as Node gives them, less those only the handshake uses (connection,
   * upgrade, sec-websocket-key/-version/-extensions/-protocol; the offered protocols are in `subprotocols`).
   */
  headers: IncomingHttpHeaders;
  client: { address: string; port: number };
  /** Subprotocols the client offered, in its order; `accept(subprotocol)` picks one. */
  subprotocols: string[];
  /** Set by `authMiddleware`; null means anonymous. */
  user: ScopeUser | null;
  /**
   * Free space for middleware, which sets it as it sets `user`, on its copy of the scope:
   * `inner({ ...scope, state: { ...scope.state, tenant } }, runtime)`. It starts as one shared,
   * frozen empty object, so a connection with no state costs nothing for it.
   */
  state: Readonly<Record<string, unknown>>;
}

/** The `state` of a scope no middleware has given any. */
export const NO_STATE: Readonly<Record<string, unknown>> = Object.freeze({});

/** URLSearchParams without its mutators: a scope describes the request as it came. */
export type ReadonlyQuery = Omit<URLSearchParams, 'append' | 'delete' | 'set' | 'sort'>;

/** What an authenticated user looks like to the framework: an id, and whatever the app adds. */
export interface ScopeUser {
  id: string;
  [key: string]: unknown;
}
