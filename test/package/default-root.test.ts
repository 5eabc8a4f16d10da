// The default --root: ./public where the working directory has one, else the site shipped with
// muxd (src/server/default-root.ts), so an installed `muxd serve` works from any folder.
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { defaultRoot, LOCAL_ROOT, SHIPPED_ROOT } from '../../src/server/default-root.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

describe('defaultRoot', () => {
  let tmp: string;
  before(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'muxd-default-root-'));
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  test('the shipped site is the public/ at the top of the package, and it has a landing page', () => {
    assert.equal(SHIPPED_ROOT, path.join(REPO_ROOT, 'public'));
    assert.ok(existsSync(path.join(SHIPPED_ROOT, 'index.html')));
  });

  test('a folder with a public/ directory serves it, written as ./public', async () => {
    const cwd = path.join(tmp, 'with-site');
    await mkdir(path.join(cwd, 'public'), { recursive: true });
    assert.equal(defaultRoot(cwd), LOCAL_ROOT);
    assert.equal(LOCAL_ROOT, './public');
  });

  test('a folder without one serves the shipped site', async () => {
    const cwd = path.join(tmp, 'empty');
    await mkdir(cwd, { recursive: true });
    assert.equal(defaultRoot(cwd), SHIPPED_ROOT);
  });

  test('anything named public still wins (a file, a broken link), so the start checks report it', async () => {
    const asFile = path.join(tmp, 'public-is-a-file');
    await mkdir(asFile, { recursive: true });
    await writeFile(path.join(asFile, 'public'), 'x');
    assert.equal(defaultRoot(asFile), LOCAL_ROOT);
    const broken = path.join(tmp, 'public-is-a-broken-link');
    await mkdir(broken, { recursive: true });
    await symlink(path.join(tmp, 'nowhere'), path.join(broken, 'public'));
    assert.equal(defaultRoot(broken), LOCAL_ROOT);
  });

  test('the check asks about <cwd>/public and nothing else', () => {
    const asked: string[] = [];
    assert.equal(defaultRoot('/srv/site', (p) => (asked.push(p), false)), SHIPPED_ROOT);
    assert.equal(defaultRoot('/srv/site', () => true), LOCAL_ROOT);
    assert.deepEqual(asked, ['/srv/site/public']);
  });

  test('the clone itself keeps ./public', () => {
    assert.equal(defaultRoot(REPO_ROOT), LOCAL_ROOT);
  });
});
