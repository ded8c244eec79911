// Path patterns and URLRouter: which application serves which URL.
import { type Application, HandshakeRejected } from './application';
import { type ConsumerClass, asApplication, isConsumerClass } from './websocket';
import type { Scope } from './scope';

/**
 * The parameters a pattern declares, as a type: `RouteParamsOf<'ws/chat/:room/'>` is `{ room: string }`.
 * Use it as a consumer's type argument so `this.scope.params.room` is typed.
 */
export type RouteParamsOf<P extends string> = P extends `${string}:${infer Rest}`
  ? Rest extends `${infer Name}/${infer Tail}`
    ? { [K in StripConstraint<Name>]: string } & RouteParamsOf<Tail>
    : { [K in StripConstraint<Rest>]: string }
  : unknown;
type StripConstraint<N extends string> = N extends `${infer Base}(${string}` ? Base : N;

export interface Route {
  readonly pattern: string;
  /** Matches the start of `path`; returns the params and the length matched, or null. */
  match(path: string): { params: Record<string, string>; length: number } | null;
  readonly app: Application;
}

const ROUTER = Symbol('channelkit.router');
type RouterApplication = Application & { [ROUTER]: true };

function isRouter(app: Application): app is RouterApplication {
  return (app as Partial<RouterApplication>)[ROUTER] === true;
}

/**
 * `path('ws/chat/:room/', ChatConsumer)`: a pattern (leading '/' optional) with named segments
 * `:name`, each matching one path segment, or `:name(regex)` to constrain it
 * (`:room([\\w-]+)`). The route matches the whole path, except when the target is a `URLRouter`:
 * then it matches a prefix and the router resolves the rest.
 */
export function path(pattern: string, target: Application | ConsumerClass): Route {
  const app = isConsumerClass(target) ? asApplication(target) : target;
  const names: string[] = [];
  const source = pattern
    .replace(/^\//, '')
    // A constraint may hold one level of parentheses: ':kind(a|(b))'.
    .split(/(:[A-Za-z_][A-Za-z0-9_]*(?:\((?:[^()\\]|\\.|\((?:[^()\\]|\\.)*\))+\))?)/)
    .map((part, index) => {
      if (index % 2 === 0) return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      const constrained = /^:([A-Za-z_][A-Za-z0-9_]*)(?:\((.+)\))?$/.exec(part)!;
      if (names.includes(constrained[1])) throw new Error(`route ${pattern}: parameter :${constrained[1]} appears twice`);
      names.push(constrained[1]);
      // Named groups, so groups inside a user's constraint do not shift the parameters.
      return `(?<p${names.length - 1}>${constrained[2] ?? '[^/]+'})`;
    })
    .join('');
  let regex: RegExp;
  try {
    regex = new RegExp(`^${source}${isRouter(app) ? '' : '$'}`);
  } catch (error) {
    throw new Error(`route ${pattern}: invalid parameter pattern (${(error as Error).message})`);
  }
  return {
    pattern,
    app,
    match(candidate) {
      const found = regex.exec(candidate);
      if (!found) return null;
      const params: Record<string, string> = {};
      for (let i = 0; i < names.length; i++) {
        const raw = found.groups![`p${i}`];
        try {
          params[names[i]] = decodeURIComponent(raw);
        } catch {
          return null;
        }
      }
      return { params, length: found[0].length };
    },
  };
}

/**
 * Tries routes in order; the first match serves the connection with `scope.params` extended. No
 * match refuses the handshake with HTTP 404. A router is an application, so it nests and can be
 * wrapped by middleware.
 */
export function URLRouter(routes: Route[]): Application {
  const router: Application = async (scope: Scope, runtime) => {
    const remaining = scope.pathRemaining.replace(/^\//, '');
    for (const route of routes) {
      const found = route.match(remaining);
      if (!found) continue;
      const inner: Scope = {
        ...scope,
        params: { ...scope.params, ...found.params },
        pathRemaining: remaining.slice(found.length),
        route: scope.route + route.pattern.replace(/^\//, ''),
      };
      return route.app(inner, runtime);
    }
    throw new HandshakeRejected(404, `no route for ${scope.path}`);
  };
  return Object.assign(router, { [ROUTER]: true as const });
}
