// Which groups keep history: `setHistory` patterns (fnmatch globs, as `channelCapacity`), first match wins.
import { type HistoryPolicy, validatePolicy } from './history';
import { globToRegExp } from './layer';

/**
 * The pattern table of one layer, in the order patterns were first set. Lookups are cached per group
 * name (bounded), so a group send to a group without history costs one Map lookup; with no pattern
 * at all, none.
 */
export class HistoryPolicies {
  private rules: Array<{ pattern: string; test: RegExp; policy: HistoryPolicy }> = [];
  private readonly cache = new Map<string, HistoryPolicy | null>();

  /** Sets (or with null removes) one pattern; a pattern set again keeps its place in the order. */
  set(pattern: string, policy: HistoryPolicy | null): void {
    if (policy) validatePolicy(policy);
    const at = this.rules.findIndex((rule) => rule.pattern === pattern);
    if (policy === null) {
      if (at !== -1) this.rules.splice(at, 1);
    } else if (at !== -1) this.rules[at].policy = { size: policy.size, ttl: policy.ttl };
    else this.rules.push({ pattern, test: globToRegExp(pattern), policy: { size: policy.size, ttl: policy.ttl } });
    this.cache.clear();
  }

  /** Replaces the whole table (as loaded from Redis), in order. */
  replace(entries: ReadonlyArray<readonly [string, HistoryPolicy]>): void {
    this.rules = entries.map(([pattern, policy]) => ({ pattern, test: globToRegExp(pattern), policy }));
    this.cache.clear();
  }

  /** The policy of `group`, or null when it keeps no history. */
  policyFor(group: string): HistoryPolicy | null {
    if (this.rules.length === 0) return null;
    let policy = this.cache.get(group);
    if (policy !== undefined) return policy;
    policy = this.rules.find((rule) => rule.test.test(group))?.policy ?? null;
    if (this.cache.size >= 10_000) this.cache.clear();
    this.cache.set(group, policy);
    return policy;
  }

  /** The table, in order, as `replace` takes it. */
  entries(): Array<[string, HistoryPolicy]> {
    return this.rules.map((rule) => [rule.pattern, { ...rule.policy }]);
  }

  get size(): number {
    return this.rules.length;
  }
}
