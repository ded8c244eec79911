// The facts of one connection, built by the server and enriched by middleware and the router.
import type { IncomingHttpHeaders } from 'node:http';

/** Route parameters: `path('ws/chat/:room/', ...)` puts `{ room: 'lobby' }` here. */
export type RouteParams = Record<string, string>;

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
  query: URLSearchParams;
  /** Lower-cased request headers, as Node gives them. */
  headers: IncomingHttpHeaders;
  client: { address: string; port: number };
  /** Subprotocols the client offered, in its order; `accept(subprotocol)` picks one. */
  subprotocols: string[];
  /** Set by `authMiddleware`; null means anonymous. */
  user: ScopeUser | null;
  /** Free space for middleware. */
  state: Record<string, unknown>;
}

/** What an authenticated user looks like to the framework: an id, and whatever the app adds. */
export interface ScopeUser {
  id: string;
  [key: string]: unknown;
}
