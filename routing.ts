// The demo app: routes, middleware stack, pages and the worker channels that `npm start` serves.
import { join } from 'node:path';
import { ChatConsumer, CHAT_ROUTE } from './consumers/chat';
import { AnnouncementWorker } from './consumers/announcements';
import { NotificationConsumer } from './consumers/notifications';
import {
  type NotificationsHttpOptions,
  describeDemoMode,
  notificationsHttp,
  notificationsHttpOptionsFromEnv,
} from './consumers/notifications-http';
import {
  type Application,
  ChannelNameRouter,
  type HttpHandler,
  URLRouter,
  authMiddleware,
  createLogger,
  originValidator,
  path,
  serveClientScript,
  serveFile,
  verifyToken,
} from './src';

export interface DemoOptions extends NotificationsHttpOptions {
  /** Browsers may connect from these origins (ALLOWED_ORIGINS, comma-separated); others get HTTP 403. */
  allowedOrigins: string[];
}

/** The options from the environment: SECRET, DEMO_PASSWORD, PUSH_SECRET, HOST, NODE_ENV, ALLOWED_ORIGINS. */
export function demoOptionsFromEnv(env: NodeJS.ProcessEnv): DemoOptions {
  return {
    ...notificationsHttpOptionsFromEnv(env),
    allowedOrigins: (env.ALLOWED_ORIGINS || 'localhost,127.0.0.1,[::1]').split(','),
  };
}

const publicDir = join(__dirname, 'public');
const publicDirFromDist = join(__dirname, '..', 'public');

/** The demo app for these options: tests build one per configuration (another SECRET, no password...). */
export function createDemo(options: DemoOptions): { application: Application; http: HttpHandler } {
  const application = originValidator(options.allowedOrigins)(
    authMiddleware((token) => {
      const id = verifyToken(token, options.secret);
      return id === null ? null : { id };
    })(
      URLRouter([
        path(CHAT_ROUTE, ChatConsumer),
        path('ws/notifications/', NotificationConsumer),
      ]),
    ),
  );
  const notifications = notificationsHttp(options);
  const http: HttpHandler = async (req, res, runtime) => {
    if (await notifications(req, res, runtime)) return true;
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (await serveClientScript(res, url.pathname)) return true; // channelkit/client, for the pages' <script type="module">
    let file: string | null = null;
    if (url.pathname === '/') file = 'index.html';
    else if (/^\/chat\/[\w-]{1,50}\/$/.test(url.pathname)) file = 'chat.html';
    else if (url.pathname === '/notifications/') file = 'notifications.html';
    else if (url.pathname.startsWith('/static/')) file = url.pathname.slice('/static/'.length);
    if (file === null) return false;
    return (await serveFile(res, publicDir, file)) || serveFile(res, publicDirFromDist, file);
  };
  return { application, http };
}

const options = demoOptionsFromEnv(process.env);

/** Signs the demo's tokens: SECRET, or random per process (set SECRET when several processes must accept each other's tokens). */
export const secret = options.secret;

export const { application, http } = createDemo(options);

// Said once at load, so an operator sees an open or disabled login before anyone tries it.
const startupLogger = createLogger();
for (const line of describeDemoMode(options)) startupLogger[line.level](line.message);

/** `channelkit worker notifications.announce` runs these. */
export const workers = new ChannelNameRouter({ 'notifications.announce': AnnouncementWorker });
