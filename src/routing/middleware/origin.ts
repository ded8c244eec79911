// Refuses browsers from foreign sites before any consumer runs (cross-site WebSocket hijacking).
import { HandshakeRejected, type Middleware } from '../../application';

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
  const log = new RefusalLog();
  return (inner) => async (scope, runtime) => {
    const origin = scope.headers.origin;
    if (origin === undefined ? !allowMissing : !isAllowed(origin, allowed)) {
      const shown = origin === undefined ? '(none)' : shorten(origin);
      // A developer whose page is refused needs the remedy in the log; an attacker must not fill it.
      const unlogged = log.rollOver();
      if (unlogged > 0) {
        runtime.logger.warn({ refused: unlogged }, 'origin refused (HTTP 403) for more origins in the last minute than are logged one by one');
      }
      if (log.first(shown)) {
        runtime.logger.warn(
          { origin: shown, path: shorten(scope.path) },
          'origin refused (HTTP 403): to allow it, add it to the origins given to originValidator([...]) ' +
            '(the demo reads them from ALLOWED_ORIGINS, comma-separated); logged once per origin per minute',
        );
      }
      throw new HandshakeRejected(403, `origin ${shown} is not allowed`);
    }
    return inner(scope, runtime);
  };
}

/** Origins and paths are the client's to choose: logged and echoed cut to this many characters. */
const MAX_SHOWN = 100;

function shorten(value: string): string {
  return value.length <= MAX_SHOWN ? value : `${value.slice(0, MAX_SHOWN)}…`;
}

const WINDOW_MS = 60_000;
/** Distinct origins logged per window; past it, one line says how many more were refused. */
const MAX_ORIGINS_PER_WINDOW = 50;

/** Which refused origins were logged in the current minute (bounded, so that made-up origins cannot grow it). */
class RefusalLog {
  private windowStart = -Infinity;
  private readonly logged = new Set<string>();
  private suppressed = 0;

  /** Starts a new window when the last one is over; returns how many refusals that one left unlogged. */
  rollOver(): number {
    const now = Date.now();
    if (now - this.windowStart < WINDOW_MS) return 0;
    const unlogged = this.suppressed;
    this.windowStart = now;
    this.logged.clear();
    this.suppressed = 0;
    return unlogged;
  }

  /** True when `origin` has not been logged in this window and the window has room. */
  first(origin: string): boolean {
    if (this.logged.has(origin)) return false;
    if (this.logged.size >= MAX_ORIGINS_PER_WINDOW) {
      this.suppressed++;
      return false;
    }
    this.logged.add(origin);
    return true;
  }
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
