// Launching the system's Chromium for the browser tests (playwright-core drives it; no browser download).
import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

/** The Chromium binary: CHROMIUM_PATH, or Debian's. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * True when Chromium is there. When it is not, says so loudly and returns false (the caller skips
 * its suite); under CI=true a missing browser is a failure, not a skip, so this throws.
 */
export function chromiumAvailable(suite: string): boolean {
  if (existsSync(CHROMIUM_PATH)) return true;
  const notice = `${CHROMIUM_PATH} not found: the browser suite "${suite}" is SKIPPED (apt-get install chromium, or set CHROMIUM_PATH)`;
  if (process.env.CI === 'true') throw new Error(`${notice}; under CI=true this is a failure`);
  process.stderr.write(`\n${'!'.repeat(100)}\n!!! ${notice}\n${'!'.repeat(100)}\n\n`);
  return false;
}

/** Headless Chromium with the flags that keep it quiet and working in containers. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
