// How many worker processes `channelkit serve` runs: WORKERS or `--workers`, checked once.
import { availableParallelism } from 'node:os';

/**
 * `WORKERS` (or `--workers`, named by `source`): a positive integer, or `auto` for one per core
 * (`os.availableParallelism()`). Unset or empty means 1: one process, no primary, as before workers.
 */
export function parseWorkers(value: string | undefined, source = 'WORKERS'): number {
  if (value === undefined || value === '') return 1;
  if (value === 'auto') return availableParallelism();
  const count = /^\d{1,4}$/.test(value) ? Number(value) : NaN;
  if (!(count >= 1)) {
    throw new Error(`${source}: "${value}" is not a number of worker processes; expected a positive integer (e.g. 4) or auto (one per core)`);
  }
  return count;
}

/** Takes `--workers N` out of `serve`'s arguments: the count (from it, else WORKERS) and the rest. */
export function takeWorkersFlag(args: string[], env: NodeJS.ProcessEnv): { workers: number; rest: string[] } {
  const at = args.indexOf('--workers');
  if (at === -1) return { workers: parseWorkers(env.WORKERS), rest: args };
  const value = args[at + 1];
  if (value === undefined || value.startsWith('--')) throw new Error('--workers needs a value: a positive integer or auto');
  return { workers: parseWorkers(value, '--workers'), rest: [...args.slice(0, at), ...args.slice(at + 2)] };
}
