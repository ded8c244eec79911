// The notifications demo's HTTP side: an explicit demo login, a token check, and a push guarded by a secret.
//
// A real app does neither of these over this server: its own login and session issue the tokens
// (`signToken` after checking real credentials), and its backends push with the publisher or
// `channelkit publish` over Redis, which never exposes an HTTP endpoint. See the README, "The demos".
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type HttpHandler, type Runtime, signToken, verifyToken } from '../src';
import { BROADCAST_GROUP, USER_ID, userGroup } from './notifications';

export interface NotificationsHttpOptions {
  /** Signs and checks the tokens (SECRET); the same on every process that must accept them. */
  secret: string;
  /**
   * The demo login's one shared password (DEMO_PASSWORD). null: when `development`, any name logs in
   * (said in the page and the log); otherwise the login answers 503.
   */
  demoPassword: string | null;
  /** What `X-Push-Secret` must equal for POST /notifications/push (PUSH_SECRET). null: push answers 503. */
  pushSecret: string | null;
  /** HOST is loopback and NODE_ENV is not 'production' (see `isDevelopment`). */
  development: boolean;
  /** Lifetime of an issued token, in seconds. Default 3600. */
  tokenTtl?: number;
}

/** The login the page must show: a password field, a name only (development), or none. */
export type LoginMode = 'password' | 'open' | 'disabled';

/** `GET /notifications/config` tells the page this, so it never guesses. */
export function loginMode(options: NotificationsHttpOptions): LoginMode {
  if (options.demoPassword !== null) return 'password';
  return options.development ? 'open' : 'disabled';
}

/**
 * Development: the server listens on loopback only (HOST unset means 127.0.0.1) and NODE_ENV is not
 * 'production'. Only then may the demo log in any name. A reverse proxy on the same host defeats the
 * loopback part, which is why production must also set NODE_ENV=production or DEMO_PASSWORD.
 */
export function isDevelopment(env: NodeJS.ProcessEnv): boolean {
  if (env.NODE_ENV === 'production') return false;
  const host = (env.HOST ?? '').trim().toLowerCase();
  return host === '' || host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** The options from SECRET, DEMO_PASSWORD, PUSH_SECRET, HOST and NODE_ENV; an empty variable counts as unset. */
export function notificationsHttpOptionsFromEnv(env: NodeJS.ProcessEnv): NotificationsHttpOptions {
  return {
    secret: env.SECRET || randomBytes(32).toString('hex'),
    demoPassword: env.DEMO_PASSWORD || null,
    pushSecret: env.PUSH_SECRET || null,
    development: isDevelopment(env),
  };
}

/** What an operator must know at startup: an open login, a disabled one, a disabled push. */
export function describeDemoMode(options: NotificationsHttpOptions): { level: 'warn' | 'info'; message: string }[] {
  const lines: { level: 'warn' | 'info'; message: string }[] = [];
  const mode = loginMode(options);
  if (mode === 'open') {
    lines.push({
      level: 'warn',
      message:
        'notifications demo: DEMO_PASSWORD is unset, so ANY NAME LOGS IN (demo only; allowed because HOST is loopback and NODE_ENV is not production)',
    });
  } else if (mode === 'disabled') {
    lines.push({ level: 'warn', message: 'notifications demo: login disabled (POST /notifications/token answers 503); set DEMO_PASSWORD to enable it' });
  }
  if (options.pushSecret === null) {
    lines.push({
      level: 'info',
      message: 'notifications demo: push disabled (POST /notifications/push answers 503); set PUSH_SECRET and send it in X-Push-Secret to enable it',
    });
  }
  return lines;
}

/**
 * Routes of the demo: `GET /notifications/config`, `POST /notifications/token` (log in),
 * `GET /notifications/token` (is this Bearer token still accepted?), `POST /notifications/push`.
 * Returns false for any other request.
 */
export function notificationsHttp(options: NotificationsHttpOptions): HttpHandler {
  const ttl = options.tokenTtl ?? 3600;
  const mode = loginMode(options);
  const password = options.demoPassword === null ? null : digest(options.demoPassword);
  const pushSecret = options.pushSecret === null ? null : digest(options.pushSecret);

  async function login(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (mode === 'disabled') {
      return json(res, 503, { error: 'the demo login is disabled: set DEMO_PASSWORD (a shared password) on the server to enable it' });
    }
    const body = (await readJson(req)) as { user?: unknown; password?: unknown } | null;
    const user = body?.user;
    if (typeof user !== 'string' || !USER_ID.test(user)) {
      return json(res, 400, { error: 'send {"user": "<1-50 letters, digits, - or _>", "password": "<DEMO_PASSWORD>"}' });
    }
    if (password !== null && (typeof body?.password !== 'string' || !sameSecret(body.password, password))) {
      return json(res, 401, { error: 'wrong password (the demo password is DEMO_PASSWORD on the server)' });
    }
    json(res, 200, { user, token: signToken(user, options.secret, ttl) });
  }

  function check(req: IncomingMessage, res: ServerResponse): void {
    const header = req.headers.authorization ?? '';
    const token = header.startsWith('Bearer ') ? header.slice('Bearer '.length).trim() : '';
    const user = token === '' ? null : verifyToken(token, options.secret);
    if (user === null) return json(res, 401, { error: 'no valid token: log in again' });
    json(res, 200, { user, expires: Number(token.split('.')[1]) * 1000 });
  }

  async function push(req: IncomingMessage, res: ServerResponse, runtime: Runtime): Promise<void> {
    if (pushSecret === null) {
      return json(res, 503, {
        error: 'push is disabled: set PUSH_SECRET on the server and send it in X-Push-Secret (or use `channelkit publish` over Redis)',
      });
    }
    const given = req.headers['x-push-secret'];
    if (typeof given !== 'string' || !sameSecret(given, pushSecret)) {
      return json(res, 403, { error: 'missing or wrong X-Push-Secret header (it must equal PUSH_SECRET)' });
    }
    const body = (await readJson(req)) as { title?: unknown; body?: unknown; user?: unknown } | null;
    if (typeof body?.title !== 'string' || typeof body.body !== 'string' || (body.user !== undefined && typeof body.user !== 'string')) {
      return json(res, 400, { error: 'send {"title": string, "body": string, "user"?: string}' });
    }
    let group: string;
    try {
      group = body.user === undefined ? BROADCAST_GROUP : userGroup(body.user);
    } catch (error) {
      return json(res, 400, { error: (error as Error).message });
    }
    await runtime.channelLayer.groupSend(group, { type: 'notification.message', title: body.title, body: body.body });
    json(res, 202, { group });
  }

  return async (req, res, runtime) => {
    const pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
    const route = `${req.method} ${pathname}`;
    if (route === 'GET /notifications/config') {
      json(res, 200, { login: mode, push: pushSecret !== null });
      return true;
    }
    if (route === 'GET /notifications/token') {
      check(req, res);
      return true;
    }
    if (route !== 'POST /notifications/token' && route !== 'POST /notifications/push') return false;
    const refusal = crossSiteRefusal(req);
    if (refusal !== null) {
      json(res, refusal.status, { error: refusal.error });
      req.resume();
      return true;
    }
    if (route === 'POST /notifications/token') await login(req, res);
    else await push(req, res, runtime);
    if (!req.readableEnded) req.resume(); // a refusal answered before the body was read
    return true;
  };
}

/**
 * Refuses what a page on another site can make a browser send. A cross-site form or `no-cors`
 * fetch can only send text/plain, form or multipart bodies, so requiring application/json (which
 * needs a CORS preflight this server never grants) shuts them out; Origin and Sec-Fetch-Site, when a
 * browser sends them, catch the rest. Clients that are not browsers send neither and pass.
 */
function crossSiteRefusal(req: IncomingMessage): { status: number; error: string } | null {
  const fetchSite = req.headers['sec-fetch-site'];
  if (fetchSite !== undefined && fetchSite !== 'same-origin' && fetchSite !== 'none') {
    return { status: 403, error: 'cross-site request refused: post from this server\'s own pages' };
  }
  const origin = req.headers.origin;
  if (origin !== undefined && !sameOrigin(origin, req.headers.host)) {
    return { status: 403, error: 'cross-site request refused: the Origin is not this server' };
  }
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/json') {
    return { status: 415, error: 'send the body as JSON with Content-Type: application/json' };
  }
  return null;
}

function sameOrigin(origin: string, host: string | undefined): boolean {
  if (host === undefined) return false;
  try {
    return new URL(origin).host.toLowerCase() === host.toLowerCase();
  } catch {
    return false; // 'null' (sandboxed frames, file://) and anything unparseable
  }
}

/** Secrets are compared as SHA-256 digests: equal lengths for timingSafeEqual, and no length leak. */
function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

function sameSecret(given: string, expected: Buffer): boolean {
  return timingSafeEqual(digest(given), expected);
}

async function readJson(req: IncomingMessage, limit = 64 * 1024): Promise<unknown> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) return null;
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString());
  } catch {
    return null;
  }
}

function json(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
  res.end(body);
}
