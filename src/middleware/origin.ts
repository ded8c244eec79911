// Refuses browsers from foreign sites before any consumer runs (cross-site WebSocket hijacking).
import { HandshakeRejected, type Middleware } from '../application';

export interface OriginValidatorOptions {
  /**
   * Connections without an Origin header come from non-browser clients, which cannot be hijacked
   * cross-site; allowed by default. Set false to require one.
   */
  allowMissing?: boolean;
}

/**
 * `allowed` entries: '*' (any), a full origin ('https://example.com', 'http://localhost:8000'), a
 * host ('example.com', any scheme and port) or a domain with its subdomains ('.example.com').
 * Anything else is refused with HTTP 403 before the handshake completes.
 */
export function originValidator(allowed: string[], options: OriginValidatorOptions = {}): Middleware {
  const allowMissing = options.allowMissing ?? true;
  return (inner) => async (scope, runtime) => {
    const origin = scope.headers.origin;
    if (origin === undefined ? !allowMissing : !isAllowed(origin, allowed)) {
      throw new HandshakeRejected(403, `origin ${origin ?? '(none)'} is not allowed`);
    }
    return inner(scope, runtime);
  };
}

function isAllowed(origin: string, allowed: string[]): boolean {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  const host = url.hostname.toLowerCase();
  return allowed.some((entry) => {
    const rule = entry.toLowerCase();
    if (rule === '*') return true;
    if (rule.includes('://')) return rule.replace(/\/$/, '') === url.origin.toLowerCase();
    if (rule.startsWith('.')) return host === rule.slice(1) || host.endsWith(rule);
    return host === rule;
  });
}
