// Loads the app's routing module for the CLI: TypeScript through ts-node, and one copy of channelkit.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import Module from 'node:module';
import { join, resolve } from 'node:path';

/**
 * What `import ... from 'channelkit'` (and `/testing`, `/publisher`) means inside the app's module: this
 * very copy of the framework, the one running the CLI. Without it, a module in this repository gets
 * the package's `exports` (dist/, beside the src/ that `npm start` runs), the framework loads twice
 * and its error classes stop matching (`instanceof NoRoute` fails: 500 instead of 404). Resolving
 * here, rather than with an exports condition, holds however the CLI is started (npm start, ts-node,
 * node dist/src/cli.js, a test's child process), with no flag to forget. tsc and jest get the same
 * mapping from tsconfig.json `paths` and jest.config.js `moduleNameMapper`.
 */
const OWN_ENTRY_POINTS: Readonly<Record<string, string>> = {
  channelkit: join(__dirname, 'index'),
  'channelkit/testing': join(__dirname, 'testing', 'index'),
  'channelkit/publisher': join(__dirname, 'publisher'),
};

let shared = false;

/**
 * Node's CommonJS resolver is the one place every `require('channelkit')` passes through; Node 20 has
 * no public synchronous resolve hook for it (module.registerHooks arrives in 22.15), so this wraps
 * `Module._resolveFilename`, as tsconfig-paths and module-alias do, for these three names only.
 */
function shareThisCopy(): void {
  if (shared) return;
  shared = true;
  const loader = Module as unknown as { _resolveFilename: (request: string, ...rest: unknown[]) => string };
  const original = loader._resolveFilename;
  loader._resolveFilename = function resolveChannelkit(this: unknown, request: string, ...rest: unknown[]): string {
    return original.call(this, Object.hasOwn(OWN_ENTRY_POINTS, request) ? OWN_ENTRY_POINTS[request] : request, ...rest);
  };
}

/** A `.ts` module needs ts-node; the app's own copy is used, registered once, transpile-only (tsc checks types). */
function registerTypeScript(file: string): void {
  if (require.extensions['.ts']) return;
  let tsNode: { register(options: { transpileOnly: boolean }): unknown };
  try {
    tsNode = createRequire(file)('ts-node') as typeof tsNode;
  } catch {
    throw new Error(
      `${file} is TypeScript and ts-node cannot be found from it: run \`npm install --save-dev ts-node\` in your project, or compile the module and serve the .js`,
    );
  }
  tsNode.register({ transpileOnly: true });
}

/**
 * The app's routing module: an explicit path, or routing.ts / dist/routing.js beside this package. A
 * module that fails to load is an error naming the file and the reason, once, at startup.
 */
export function loadRoutingModule(explicit: string | undefined): { file: string; module: Record<string, unknown> } {
  const file = explicit ? resolve(explicit) : resolve(__dirname, '..', 'routing');
  shareThisCopy();
  try {
    // `serve app/routing` may name a .ts file without its extension.
    if (/\.[cm]?ts$/.test(file) || (!/\.[cm]?js$/.test(file) && existsSync(`${file}.ts`) && !existsSync(`${file}.js`))) registerTypeScript(file);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return { file, module: require(file) as Record<string, unknown> };
  } catch (error) {
    const reason = (error as Error).message;
    throw new Error(reason.startsWith(file) ? reason : `cannot load the routing module ${file}: ${reason}`);
  }
}
