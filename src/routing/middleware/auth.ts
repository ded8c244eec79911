// Sets scope.user from a token in the query string, a cookie or the Authorization header.
import type { Middleware, Scope, ScopeUser } from '../../application';

/** Turns a token into a user, or null when it is unknown, expired or forged. */
export type UserResolver = (token: string, scope: Scope) => ScopeUser | null | Promise<ScopeUser | null>;

export interface AuthOptions {
  /** Query parameter holding the token. Default 'token'. */
  queryParam?: string;
  /** Cookie holding the token. Default 'token'. */
  cookie?: string;
}

/**
 * Looks for a token in `Authorization: Bearer <token>`, then the query string, then the cookie, and
 * sets `scope.user` to what `resolveUser` returns (null: anonymous). It refuses nobody: consumers
 * decide (close in `connect()` to refuse with 403), as with Channels' AuthMiddleware. The query comes
 * before the cookie because a page picks it for this connection, while a cookie is ambient and may be
 * stale (an old login of the same browser).
 */
export function authMiddleware(resolveUser: UserResolver, options: AuthOptions = {}): Middleware {
  const queryParam = options.queryParam ?? 'token';
  const cookieName = options.cookie ?? 'token';
  return (inner) => async (scope, runtime) => {
    const token = bearer(scope.headers.authorization) ?? scope.query.get(queryParam) ?? cookie(scope.headers.cookie, cookieName);
    const user = token ? await resolveUser(token, scope) : null;
    return inner({ ...scope, user }, runtime);
  };
}

function bearer(header: string | undefined): string | null {
  const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
  return match ? match[1] : null;
}

function cookie(header: string | undefined, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return null;
      }
    }
  }
  return null;
}
