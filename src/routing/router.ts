// Path patterns and URLRouter: which application serves which URL, as Django's path(), re_path() and Channels' URLRouter.
import { type Application, HandshakeRejected, type RouteParamValue, type Scope } from '../application';
import { type ConsumerClass, asApplication, isConsumerClass } from '../consumer/websocket';

/**
 * The parameters a pattern declares, as a type: `RouteParamsOf<'ws/chat/:room/'>` is `{ room: string }`,
 * `RouteParamsOf<'items/:id(int)/'>` is `{ id: number }`. Use it as a consumer's type argument so
 * `this.scope.params.room` is typed.
 */
export type RouteParamsOf<P extends string> = P extends `${string}:${infer Rest}`
  ? Rest extends `${infer Name}/${infer Tail}`
    ? ParamOf<Name> & RouteParamsOf<Tail>
    : ParamOf<Rest>
  : unknown;
type ParamOf<N extends string> = N extends `${infer Base}(${infer Inside})`
  ? { [K in Base]: Inside extends 'int' ? number : string }
  : { [K in N]: string };

/** Django's converters: the five words that may stand in parentheses instead of a regex. */
const CONVERTERS: Record<string, { regex: string; convert?: (raw: string) => RouteParamValue | null }> = {
  // A number that JavaScript cannot hold exactly is no match rather than a wrong id.
  int: { regex: '[0-9]+', convert: (raw) => (Number.isSafeInteger(Number(raw)) ? Number(raw) : null) },
  str: { regex: '[^/]+' },
  slug: { regex: '[-a-zA-Z0-9_]+' },
  uuid: { regex: '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}' },
  path: { regex: '.+' },
};

export interface Route {
  readonly pattern: string;
  /** Matches the start of `path`; returns the params and the length matched, or null. */
  match(path: string): { params: Record<string, RouteParamValue>; length: number } | null;
  readonly app: Application;
  /** The consumer class, when the route ends at one (`app` then makes one instance per connection). */
  readonly consumer?: ConsumerClass;
}

/**
 * The refusal "no route for this path": HTTP 404. A router that finds no route throws it, and the
 * router around it then tries its next routes (Django's resolver does the same); any other refusal,
 * a 404 from an application included, stands.
 */
export class NoRoute extends HandshakeRejected {
  constructor(path: string) {
    super(404, `no route for ${path}`);
    this.name = 'NoRoute';
  }
}

/**
 * `path('ws/chat/:room/', ChatConsumer)`: a pattern (leading '/' optional) with named segments
 * `:name`, each matching one path segment; `:name(int)` (or `str`, `slug`, `uuid`, `path`) converts it
 * like Django's converters (`int` gives a number); `:name(regex)` constrains it (`:room([\\w-]+)`).
 * A consumer class matches the whole path; any other application (a URLRouter, alone or wrapped in
 * middleware) matches a prefix and gets the rest in `scope.pathRemaining`. A malformed pattern or
 * target throws here, when the routes are built, not on each connection.
 */
export function path(pattern: string, target: Application | ConsumerClass): Route {
  const { app, consumer } = routeTarget(pattern, target);
  const endpoint = consumer !== undefined;
  const names: string[] = [];
  /** The regex's group of each parameter (`p0`, `p1`...): named once here, not per match. */
  const groups: string[] = [];
  const converters: Array<((raw: string) => RouteParamValue | null) | undefined> = [];
  const source = pattern
    .replace(/^\//, '')
    // A constraint may hold one level of parentheses: ':kind(a|(b))'.
    .split(/(:[A-Za-z_][A-Za-z0-9_]*(?:\((?:[^()\\]|\\.|\((?:[^()\\]|\\.)*\))+\))?)/)
    .map((part, index) => {
      if (index % 2 === 0) {
        // Parentheses left in the literal text are a constraint that did not close (or opened twice).
        if (/[()]/.test(part)) throw new Error(`route ${pattern}: unbalanced parentheses near "${part}" (literal parentheses need rePath())`);
        return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      }
      const constrained = /^:([A-Za-z_][A-Za-z0-9_]*)(?:\((.+)\))?$/.exec(part)!;
      if (names.includes(constrained[1])) throw new Error(`route ${pattern}: parameter :${constrained[1]} appears twice`);
      // Only the five words are converters; anything else in parentheses is a regex, 'ints' and 'toString' included.
      const converter = constrained[2] !== undefined && Object.hasOwn(CONVERTERS, constrained[2]) ? CONVERTERS[constrained[2]] : undefined;
      names.push(constrained[1]);
      converters.push(converter?.convert);
      // Named groups, so groups inside a user's constraint do not shift the parameters.
      groups.push(`p${names.length - 1}`);
      return `(?<${groups[names.length - 1]}>${converter ? converter.regex : (constrained[2] ?? '[^/]+')})`;
    })
    .join('');
  let regex: RegExp;
  try {
    regex = new RegExp(`^${source}${endpoint ? '$' : ''}`);
  } catch (error) {
    throw new Error(`route ${pattern}: invalid parameter pattern (${(error as Error).message})`);
  }
  return {
    pattern,
    app,
    consumer,
    match(candidate) {
      const found = regex.exec(candidate);
      if (!found) return null;
      const params: Record<string, RouteParamValue> = {};
      for (let i = 0; i < names.length; i++) {
        const value = decode(found.groups![groups[i]], converters[i]);
        if (value === null) return null;
        params[names[i]] = value;
      }
      return { params, length: found[0].length };
    },
  };
}

/**
 * `rePath(/^ws\/chat\/(?<room>\w+)\/$/, ChatConsumer)`, Django's `re_path()`: a regular expression (a
 * RegExp or a string; Python's `(?P<name>...)` and `(?P=name)` are accepted) matched from the start of
 * the remaining path. Named groups become string params. A consumer class must match the whole path;
 * for another application (a router) a final `$` is dropped, so it matches a prefix.
 */
export function rePath(pattern: RegExp | string, target: Application | ConsumerClass): Route {
  const label = typeof pattern === 'string' ? pattern : pattern.source;
  const { app, consumer } = routeTarget(label, target);
  const endpoint = consumer !== undefined;
  // The router strips the path's leading '/', as path() does for patterns: '^/ws/' means '^ws/'.
  let source = label.replace(/^(\^?)\//, '$1').replace(/\(\?P<([A-Za-z_][A-Za-z0-9_]*)>/g, '(?<$1>').replace(/\(\?P=([A-Za-z_][A-Za-z0-9_]*)\)/g, '\\k<$1>');
  if (!endpoint) source = source.replace(/(^|[^\\])\$$/, '$1');
  const flags = typeof pattern === 'string' ? '' : pattern.flags.replace(/[gy]/g, '');
  let regex: RegExp;
  try {
    regex = new RegExp(`^(?:${source})${endpoint ? '$' : ''}`, flags);
  } catch (error) {
    throw new Error(`route ${label}: invalid regular expression (${(error as Error).message})`);
  }
  return {
    pattern: label,
    app,
    consumer,
    match(candidate) {
      const found = regex.exec(candidate);
      if (!found) return null;
      const params: Record<string, RouteParamValue> = {};
      for (const [name, raw] of Object.entries(found.groups ?? {})) {
        if (raw === undefined) continue;
        const value = decode(raw, undefined);
        if (value === null) return null;
        params[name] = value;
      }
      return { params, length: found[0].length };
    },
  };
}

function decode(raw: string, convert: ((raw: string) => RouteParamValue | null) | undefined): RouteParamValue | null {
  let text: string;
  try {
    text = decodeURIComponent(raw);
  } catch {
    return null;
  }
  return convert ? convert(text) : text;
}

/** A consumer class is an endpoint; any other function is an application; anything else is a mistake, said now. */
function routeTarget(pattern: string, target: unknown): { app: Application; consumer?: ConsumerClass } {
  if (isConsumerClass(target)) return { app: asApplication(target), consumer: target };
  if (typeof target === 'function') {
    if (/^class[\s{]/.test(Function.prototype.toString.call(target))) {
      throw new Error(
        `route ${pattern}: ${target.name || 'the target'} is a class but not a WebsocketConsumer (worker consumers go in a ChannelNameRouter)`,
      );
    }
    return { app: target as Application };
  }
  throw new Error(
    `route ${pattern}: the target must be a WebsocketConsumer class or an application (a URLRouter, a middleware-wrapped one, or (scope, runtime) => Promise<Connection>); got ${target === null ? 'null' : typeof target}`,
  );
}

/**
 * Tries routes in order; the first match serves the connection with `scope.params` extended. When the
 * matched application answers "no route" (a nested router found nothing), the next routes are tried.
 * No match at all refuses the handshake with NoRoute (HTTP 404). A router is an application, so it
 * nests and can be wrapped by middleware.
 */
export function URLRouter(routes: Route[]): Application {
  routes.forEach((route, index) => {
    if (typeof route !== 'object' || route === null || typeof route.match !== 'function') {
      throw new Error(`URLRouter: route ${index} is not a path() or rePath() route (wrap a consumer as path('ws/x/', XConsumer))`);
    }
  });
  // What each route adds to `scope.route`, worked out once rather than per connection.
  const labels = routes.map((route) => withoutLeadingSlash(route.pattern));
  return async (scope: Scope, runtime) => {
    const remaining = withoutLeadingSlash(scope.pathRemaining);
    for (let i = 0; i < routes.length; i++) {
      const route = routes[i];
      const found = route.match(remaining);
      if (!found) continue;
      const inner: Scope = {
        ...scope,
        // The match's params are a new object of their own: merged into only when an outer router matched some.
        params: hasKeys(scope.params) ? { ...scope.params, ...found.params } : found.params,
        pathRemaining: remaining.slice(found.length),
        route: scope.route + labels[i],
      };
      // A consumer is made here, not through `app`: that is one promise and one await less per
      // connection, and a consumer never answers NoRoute.
      if (route.consumer) return new route.consumer(inner, runtime);
      try {
        return await route.app(inner, runtime);
      } catch (error) {
        if (!(error instanceof NoRoute)) throw error;
      }
    }
    throw new NoRoute(scope.path);
  };
}

function hasKeys(object: object): boolean {
  for (const _ in object) return true;
  return false;
}

function withoutLeadingSlash(text: string): string {
  return text.startsWith('/') ? text.slice(1) : text;
}
