// Headless Chromium for the browser tests: the system browser (apt-get install chromium),
// driven by playwright-core, with the flags that keep it quiet and sandbox-free in CI.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { startMuxd, type MuxdProcess } from './muxd-process.js';

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

/** What one browser test file runs against, once before() has run. */
export interface BrowserServe {
  readonly tmp: string;
  readonly muxd: MuxdProcess;
  readonly browser: Browser;
}

/**
 * For a browser test file: before() makes a temp dir (named from `prefix`), starts `muxd serve`
 * with args(tmp) and launches Chromium; after() closes all three. Nothing starts under browserSkip.
 */
export function browserServe(prefix: string, args: (tmp: string) => string[]): BrowserServe {
  let tmp = '';
  let muxd: MuxdProcess | undefined;
  let browser: Browser | undefined;
  before(async () => {
    if (browserSkip) return;
    tmp = await mkdtemp(path.join(tmpdir(), prefix));
    muxd = await startMuxd(args(tmp));
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await muxd?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });
  return {
    get tmp() {
      return tmp;
    },
    get muxd() {
      if (muxd === undefined) throw new Error('muxd is not started (before() has not run, or the browser tests are skipped)');
      return muxd;
    },
    get browser() {
      if (browser === undefined) throw new Error('Chromium is not launched (before() has not run, or the browser tests are skipped)');
      return browser;
    },
  };
}
