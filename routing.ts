// The demo app: routes, middleware stack, pages and the worker channels that `npm start` serves.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { ChatConsumer, CHAT_ROUTE } from './consumers/chat';
import { AnnouncementWorker } from './consumers/announcements';
import { NotificationConsumer, issueToken, pushNotification } from './consumers/notifications';
import {
  ChannelNameRouter,
  type HttpHandler,
  URLRouter,
  authMiddleware,
  originValidator,
  path,
  serveFile,
  verifyToken,
} from './src';

/** Signs the demo's tokens. Set SECRET when several processes must accept each other's tokens. */
export const secret = process.env.SECRET ?? randomBytes(32).toString('hex');

/** Browsers may connect from these origins (comma-separated ALLOWED_ORIGINS); others get HTTP 403. */
const allowedOrigins = (process.env.ALLOWED_ORIGINS ?? 'localhost,127.0.0.1,[::1]').split(',');

export const application = originValidator(allowedOrigins)(
  authMiddleware((token) => {
    const id = verifyToken(token, secret);
    return id === null ? null : { id };
  })(
    URLRouter([
      path(CHAT_ROUTE, ChatConsumer),
      path('ws/notifications/', NotificationConsumer),
    ]),
  ),
);

const publicDir = join(__dirname, 'public');
const publicDirFromDist = join(__dirname, '..', 'public');

export const http: HttpHandler = async (req, res, runtime) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const route = `${req.method} ${url.pathname}`;
  if (route === 'POST /notifications/token') return issueToken(req, res, secret).then(() => true);
  if (route === 'POST /notifications/push') return pushNotification(req, res, runtime).then(() => true);
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  let file: string | null = null;
  if (url.pathname === '/') file = 'index.html';
  else if (/^\/chat\/[\w-]{1,50}\/$/.test(url.pathname)) file = 'chat.html';
  else if (url.pathname === '/notifications/') file = 'notifications.html';
  else if (url.pathname.startsWith('/static/')) file = url.pathname.slice('/static/'.length);
  if (file === null) return false;
  return (await serveFile(res, publicDir, file)) || serveFile(res, publicDirFromDist, file);
};

/** `channelkit worker notifications.announce` runs these. */
export const workers = new ChannelNameRouter({ 'notifications.announce': AnnouncementWorker });
