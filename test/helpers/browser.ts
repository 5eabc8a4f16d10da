// Headless Chromium for the browser tests: the system browser (apt-get install chromium),
// driven by playwright-core, with the flags that keep it quiet and sandbox-free in CI.
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** CI installs Chromium (.ci/run), so there a missing browser is a failure, not a skip. */
export const browserSkip: string | false = !existsSync(CHROMIUM) && process.env.CI !== 'true' ? `no Chromium at ${CHROMIUM} (apt-get install chromium)` : false;

/** `extraArgs`: more Chromium flags (the TLS test trusts one key with --ignore-certificate-errors-spki-list). */
export function launchBrowser(extraArgs: string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', ...extraArgs],
  });
}
