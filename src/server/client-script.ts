// Serving channelkit/client to browsers as ES modules, with no build step in a checkout.
import { readFile, stat } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { join } from 'node:path';
import type * as TypeScript from 'typescript';

/** Where a page imports the client from: `import { Room } from '/static/channelkit-client.js'`. */
export const CLIENT_SCRIPT_PATH = '/static/channelkit-client.js';

/** The client's own modules, which the entry imports relatively ('./channelkit-client/room.js'). */
const MODULES_PATH = '/static/channelkit-client/';

/** The entry: one line, so every module keeps its own URL and the browser caches each. */
const ENTRY = "export * from './channelkit-client/index.js';\n";

/** src/client/ seen from src/server/ (ts-node, jest); absent from dist/src/server/, as the build leaves it out. */
const SOURCES = join(__dirname, '..', 'client');
/** dist/client/ (`npm run build`), seen from src/server/ and from dist/src/server/. */
const BUILT = [join(__dirname, '..', '..', 'dist', 'client'), join(__dirname, '..', '..', 'client')];

/**
 * The `typescript` package when it is installed (a checkout after `npm install`: `npm start` runs on
 * ts-node, which needs it); null when not (an install without dev dependencies), and then the built
 * modules are served.
 */
let typescript: typeof TypeScript | null | undefined;
function loadTypescript(): typeof TypeScript | null {
  if (typescript === undefined) {
    try {
      typescript = require('typescript') as typeof TypeScript;
    } catch {
      typescript = null;
    }
  }
  return typescript;
}

/** Transpiled modules by source file, kept while the file's mtime is unchanged. */
const transpiled = new Map<string, { mtimeMs: number; code: string }>();

/**
 * Answers `/static/channelkit-client.js` and the modules it imports under `/static/channelkit-client/`,
 * and returns true; false for any other path or a module that does not exist.
 *
 * Why on request rather than a build step: in a checkout the page then always runs the client's
 * current source (no stale dist/ after an edit, no `prepare` script to run), and `npm install &&
 * npm start` is enough. Each module is transpiled alone (`transpileModule`, types erased, no type
 * check: `npm run typecheck` does that) once per change of its file. Where the sources or the
 * `typescript` package are absent, the built modules of dist/client/ are served instead.
 */
export async function serveClientScript(res: ServerResponse, pathname: string): Promise<boolean> {
  if (pathname === CLIENT_SCRIPT_PATH) {
    send(res, ENTRY);
    return true;
  }
  if (!pathname.startsWith(MODULES_PATH)) return false;
  const match = /^([a-z][a-z0-9-]*)\.js$/.exec(pathname.slice(MODULES_PATH.length));
  if (match === null) return false;
  const code = (await fromSource(match[1])) ?? (await fromBuild(match[1]));
  if (code === null) return false;
  send(res, code);
  return true;
}

async function fromSource(name: string): Promise<string | null> {
  const ts = loadTypescript();
  if (ts === null) return null;
  const file = join(SOURCES, `${name}.ts`);
  let mtimeMs: number;
  try {
    mtimeMs = (await stat(file)).mtimeMs;
  } catch {
    return null;
  }
  const cached = transpiled.get(file);
  if (cached !== undefined && cached.mtimeMs === mtimeMs) return cached.code;
  const output = ts.transpileModule(await readFile(file, 'utf8'), {
    fileName: file,
    compilerOptions: {
      module: ts.ModuleKind.ES2020,
      target: ts.ScriptTarget.ES2020,
      inlineSourceMap: true,
      inlineSources: true,
    },
  });
  transpiled.set(file, { mtimeMs, code: output.outputText });
  return output.outputText;
}

async function fromBuild(name: string): Promise<string | null> {
  for (const dir of BUILT) {
    try {
      return await readFile(join(dir, `${name}.js`), 'utf8');
    } catch {
      // not built there; try the next place
    }
  }
  return null;
}

function send(res: ServerResponse, code: string): void {
  res.writeHead(200, {
    'Content-Type': 'text/javascript; charset=utf-8',
    'Content-Length': Buffer.byteLength(code),
    'Cache-Control': 'no-cache',
  });
  res.end(code);
}
