// The chat page in a real browser (issue 15 "Done means"): two Chromium pages on /chat/ and one
// `muxd chat` CLI process share one room on a real `muxd serve` (once alone, once with
// --workers 2): each sees the others join and every message, an admin announcement arrives
// everywhere, a closed page is announced as left, a taken name is refused inline, markup shows
// as text and opens no dialog. Then the server stops and starts again on the same port: the page
// says it is away and rejoins with the same name.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { browserSkip, launchBrowser } from '../helpers/browser.js';
import { startMuxd, runMuxd, MUXD_BIN, REPO_ROOT, type MuxdProcess } from '../helpers/muxd-process.js';
import { waitFor } from '../helpers/wait.js';

const skip = browserSkip;
const ADMIN_TOKEN = 'chat-page-admin';
const XSS = '<img src=x onerror=alert(1)>';
/** Every wait in this file ends by then. */
const DEADLINE_MS = 15_000;

let tmp = '';
let browser: Browser;

before(async () => {
  if (skip) return;
  tmp = await mkdtemp(path.join(tmpdir(), 'muxd-chat-page-'));
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** Env without the caller's MUXD_* settings, so only the flags under test apply. */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('MUXD_')) env[k] = v;
  return { ...env, ...extra };
}

/** `muxd chat` as a person runs it in a pipe: every line written is a SAY, EOF leaves. */
class CliMember {
  readonly proc: ChildProcessWithoutNullStreams;
  out = '';
  readonly exited: Promise<number | null>;
  constructor(name: string, port: number) {
    this.proc = spawn(process.execPath, [MUXD_BIN, 'chat', '--name', name, '--port', String(port)], { env: cleanEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc.stdout.on('data', (c: Buffer) => (this.out += c.toString()));
    this.proc.stderr.on('data', (c: Buffer) => (this.out += c.toString()));
    this.exited = new Promise((resolve) => this.proc.on('close', resolve));
  }
  async sees(text: string | RegExp): Promise<void> {
    const found = (): boolean => (typeof text === 'string' ? this.out.includes(text) : text.test(this.out));
    await waitFor(found, { timeoutMs: DEADLINE_MS, stepMs: 20, what: `the CLI member to print ${String(text)}`, detail: () => `it printed:\n${this.out}` });
  }
  say(line: string): void {
    this.proc.stdin.write(line + '\n');
  }
}

/** A person on the chat page; every dialog the page opens is recorded (and dismissed). */
interface Person {
  page: Page;
  dialogs: string[];
  errors: string[];
}

async function openChat(base: string, query = ''): Promise<Person> {
  const page = await browser.newPage();
  const person: Person = { page, dialogs: [], errors: [] };
  page.on('dialog', (d) => {
    person.dialogs.push(d.message());
    void d.dismiss();
  });
  page.on('pageerror', (e) => person.errors.push(e.message));
  const res = await page.goto(`${base}/chat/${query}`, { waitUntil: 'load' });
  assert.equal(res?.status(), 200);
  await page.waitForSelector('html[data-js="ready"]', { timeout: DEADLINE_MS });
  return person;
}

/** Types a name and presses Enter, as a keyboard user would. */
async function typeName(p: Person, name: string): Promise<void> {
  await p.page.focus('#name');
  await p.page.fill('#name', name);
  await p.page.keyboard.press('Enter');
}

async function join(p: Person, name: string): Promise<void> {
  await typeName(p, name);
  await p.page.waitForSelector('#status[data-state="joined"]', { timeout: DEADLINE_MS });
}

/** Types a message and presses Enter. */
async function say(p: Person, text: string): Promise<void> {
  await p.page.focus('#text');
  await p.page.fill('#text', text);
  await p.page.keyboard.press('Enter');
}

/** The log's lines as text. Page-side code is passed as strings: the project compiles without the DOM library. */
const logLines = (p: Person): Promise<string[]> => p.page.evaluate<string[]>(`Array.from(document.querySelectorAll('#log li'), (li) => li.textContent)`);
const members = (p: Person): Promise<string[]> =>
  p.page.evaluate<string[]>(`Array.from(document.querySelectorAll('#members li'), (li) => li.firstChild.textContent)`);

async function seesLine(p: Person, want: string | RegExp, who: string): Promise<void> {
  const match = (l: string): boolean => (typeof want === 'string' ? l.includes(want) : want.test(l));
  let last: string[] = [];
  await waitFor(async () => (last = await logLines(p)).some(match), {
    timeoutMs: DEADLINE_MS,
    stepMs: 50,
    what: `${who}'s page to show ${String(want)}`,
    detail: () => `the log was:\n${last.join('\n')}`,
  });
}

async function seesMembers(p: Person, want: string[], who: string): Promise<void> {
  let last: string[] = [];
  await waitFor(async () => JSON.stringify((last = await members(p)).slice().sort()) === JSON.stringify(want.slice().sort()), {
    timeoutMs: DEADLINE_MS,
    stepMs: 50,
    what: `${who}'s member list to be ${JSON.stringify(want)}`,
    detail: () => `it stayed ${JSON.stringify(last)}`,
  });
}

/** One message line: its sender, its text and whether it carries a machine-readable time. */
async function messageLines(p: Person): Promise<{ from: string; text: string; timed: boolean }[]> {
  return p.page.evaluate(`Array.from(document.querySelectorAll('#log li.msg'), (li) => ({
    from: li.querySelector('.from').textContent,
    text: li.querySelector('.text').textContent,
    timed: !Number.isNaN(Date.parse(li.querySelector('time').dateTime)),
  }))`);
}

async function roomTest(extra: string[], screenshot: boolean): Promise<void> {
  const muxd = await startMuxd(['--files-dir', path.join(tmp, `files${extra.join('')}`), '--admin-token', ADMIN_TOKEN, ...extra]);
  const base = `http://127.0.0.1:${muxd.httpPort}`;
  const people: Person[] = [];
  let cli: CliMember | undefined;
  try {
    const ada = await openChat(base);
    people.push(ada);
    // Labels for every field, so a screen reader names them.
    const unlabelled = await ada.page.evaluate<string[]>(`Array.from(document.querySelectorAll('input'), (i) => i.labels.length ? '' : i.id).filter(Boolean)`);
    assert.deepEqual(unlabelled, []);
    await join(ada, 'ada');
    await seesMembers(ada, ['ada'], 'ada');
    assert.equal(await ada.page.evaluate<string>(`document.activeElement.id`), 'text', 'after joining, the message field has the focus');

    cli = new CliMember('carol', muxd.binaryPort);
    await cli.sees(/joined as carol; present: .*ada/);
    await seesLine(ada, 'carol joined', 'ada');
    await seesMembers(ada, ['ada', 'carol'], 'ada');

    // An invalid name (ERROR 10) and a taken one (ERROR 11, any case) are said inline; the next choice works.
    const bob = await openChat(base);
    people.push(bob);
    const nameError = (): Promise<string> => bob.page.evaluate<string>(`document.getElementById('name-error').textContent`);
    await typeName(bob, 'bob smith');
    await bob.page.waitForSelector('#name-error:not([hidden])', { timeout: DEADLINE_MS });
    assert.match(await nameError(), /letters, digits.*Choose another name/);
    await typeName(bob, 'ADA');
    await waitFor(async () => /“ADA” is taken\. Choose another name\./.test(await nameError()), { timeoutMs: DEADLINE_MS, stepMs: 50, what: 'the taken-name error', detail: () => 'see the name-error paragraph' });
    assert.equal(await bob.page.getAttribute('#name', 'aria-invalid'), 'true');
    assert.equal(await bob.page.evaluate<string>(`document.activeElement.id`), 'name', 'the name field has the focus again');
    assert.equal(await bob.page.isVisible('#room'), false, 'the room stays out of sight until joined');
    assert.equal(await bob.page.isVisible('#join-form'), true);
    await join(bob, 'bob');
    assert.equal(await bob.page.isVisible('#name-error'), false, 'the error is gone');
    assert.equal(await bob.page.isVisible('#join-form'), false, 'the name form makes way for the room');
    await seesMembers(bob, ['ada', 'carol', 'bob'], 'bob');
    await seesLine(ada, 'bob joined', 'ada');
    await seesMembers(ada, ['ada', 'carol', 'bob'], 'ada');
    await cli.sees('* bob joined');

    // Every message reaches the other two, with its sender and time.
    await say(ada, 'hello from ada');
    await seesLine(bob, 'hello from ada', 'bob');
    await cli.sees('<ada> hello from ada');
    cli.say('hi from carol');
    await seesLine(ada, 'hi from carol', 'ada');
    await seesLine(bob, 'hi from carol', 'bob');
    await say(bob, 'José says 张三 ✓');
    await seesLine(ada, 'José says 张三 ✓', 'ada');
    await cli.sees('<bob> José says 张三 ✓');
    // Markup is text: shown as typed, no element made of it, no dialog.
    await say(bob, XSS);
    await seesLine(ada, XSS, 'ada');
    await cli.sees(`<bob> ${XSS}`);
    await waitFor(async () => (await messageLines(bob)).some((m) => m.text === XSS && m.from === 'bob'), { timeoutMs: DEADLINE_MS, stepMs: 50, what: 'bob to see his own message' });
    for (const p of [ada, bob]) {
      assert.equal(await p.page.evaluate<number>(`document.querySelectorAll('#log img').length`), 0, 'no element made of the message');
    }
    const adaSaw = await messageLines(ada);
    assert.deepEqual(
      adaSaw.map((m) => [m.from, m.text]),
      [['ada', 'hello from ada'], ['carol', 'hi from carol'], ['bob', 'José says 张三 ✓'], ['bob', XSS]],
    );
    assert.ok(adaSaw.every((m) => m.timed), 'every message carries its time');
    await waitFor(async () => (await ada.page.evaluate<string | null>(`document.querySelector('#log li.msg.me').dataset.state`)) === 'sent', {
      timeoutMs: DEADLINE_MS,
      stepMs: 50,
      what: "ada's own message to be confirmed by SAY_OK",
    });

    // An admin announcement reaches every member.
    const announced = await runMuxd(['announce', 'maintenance at noon', '--port', String(muxd.binaryPort)], { env: cleanEnv({ MUXD_ADMIN_TOKEN: ADMIN_TOKEN }) });
    assert.equal(announced.code, 0, announced.stderr);
    await seesLine(ada, 'Announcement: maintenance at noon', 'ada');
    await seesLine(bob, 'Announcement: maintenance at noon', 'bob');
    await cli.sees('** announcement: maintenance at noon');

    if (screenshot) {
      // Phone width: looked at by a person, not committed.
      await ada.page.setViewportSize({ width: 375, height: 900 });
      const overflow = await ada.page.evaluate<number>(`document.documentElement.scrollWidth - document.documentElement.clientWidth`);
      assert.equal(overflow, 0, 'nothing sticks out sideways at 375 px');
      await mkdir(path.join(REPO_ROOT, '.bench-out'), { recursive: true });
      await ada.page.screenshot({ path: path.join(REPO_ROOT, '.bench-out', 'chat-375.png'), fullPage: true });
    }

    // A page that closes is announced as left.
    await bob.page.close();
    people.splice(people.indexOf(bob), 1);
    await seesLine(ada, 'bob left', 'ada');
    await seesMembers(ada, ['ada', 'carol'], 'ada');
    await cli.sees('* bob left');
    // And the CLI member leaving, too.
    cli.proc.stdin.end();
    assert.equal(await cli.exited, 0, cli.out);
    await seesLine(ada, 'carol left', 'ada');
    await seesMembers(ada, ['ada'], 'ada');

    for (const p of [ada, bob]) {
      assert.deepEqual(p.dialogs, [], 'no dialog opened');
      assert.deepEqual(p.errors, [], 'no script error');
    }
  } finally {
    cli?.proc.kill();
    for (const p of people) await p.page.close();
    await muxd.stop();
  }
}

test('two chat pages and a muxd chat client share one room', { skip }, () => roomTest([], true));

test('the same room with --workers 2', { skip }, () => roomTest(['--workers', '2'], false));

test('the server stops and starts again on the same port: the page says it is away and rejoins with the same name', { skip }, async () => {
  const files = ['--files-dir', path.join(tmp, 'files-restart')];
  let muxd: MuxdProcess = await startMuxd(files);
  const port = muxd.httpPort;
  const base = `http://127.0.0.1:${port}`;
  const ada = await openChat(base);
  try {
    await join(ada, 'ada');
    await muxd.stop();
    // Graceful shutdown: the announcement, then the close; the page counts down to its next try.
    await ada.page.waitForSelector('#status[data-state="away"]', { timeout: DEADLINE_MS });
    assert.match(await ada.page.evaluate<string>(`document.getElementById('status').textContent`), /Away.*rejoin as ada/);
    await seesLine(ada, 'Announcement: server is shutting down', 'ada');
    await seesLine(ada, /Connection lost/, 'ada');
    assert.equal(await ada.page.isVisible('#retry'), true, 'a Reconnect now button is offered');
    assert.match(await ada.page.evaluate<string>(`document.getElementById('retry').textContent`), /^Reconnect now \(next try in \d+ s\)$/);

    muxd = await startMuxd([...files, '--http-port', String(port)]);
    await ada.page.waitForSelector('#status[data-state="joined"]', { timeout: 40_000 });
    await seesLine(ada, 'Reconnected: rejoined as ada', 'ada');
    await seesMembers(ada, ['ada'], 'ada');
    // The new server has ada in its room.
    const cli = new CliMember('carol', muxd.binaryPort);
    try {
      await cli.sees(/joined as carol; present: ada, carol/);
      await seesLine(ada, 'carol joined', 'ada');
      await say(ada, 'back again');
      await cli.sees('<ada> back again');
      // Leaving by keyboard: the others see it, and the page goes back to the name form.
      await ada.page.focus('#leave');
      await ada.page.keyboard.press('Enter');
      await cli.sees('* ada left');
      await ada.page.waitForSelector('#status[data-state="offline"]', { timeout: DEADLINE_MS });
      assert.equal(await ada.page.isVisible('#join-form'), true);
      assert.equal(await ada.page.evaluate<string>(`document.activeElement.id`), 'name');
      cli.proc.stdin.end();
      assert.equal(await cli.exited, 0, cli.out);
    } finally {
      cli.proc.kill();
    }
    assert.deepEqual(ada.errors, []);
  } finally {
    await ada.page.close();
    await muxd.stop();
  }
});

test('with --ws-path moved, /chat/?ws=PATH follows it; an off-site value keeps to this origin', { skip }, async () => {
  const muxd = await startMuxd(['--files-dir', path.join(tmp, 'files-ws-path'), '--ws-path', '/ops/mx']);
  const base = `http://127.0.0.1:${muxd.httpPort}`;
  const sockets: string[] = [];
  const pages: Person[] = [];
  try {
    const moved = await openChat(`${base}`, '?ws=/ops/mx');
    pages.push(moved);
    moved.page.on('websocket', (w) => sockets.push(w.url()));
    await join(moved, 'ada');
    const offSite = await openChat(`${base}`, `?ws=${encodeURIComponent('//evil.example/mx')}`);
    pages.push(offSite);
    offSite.page.on('websocket', (w) => sockets.push(w.url()));
    // The default path is not upgraded on this server: the page says it cannot reach the chat.
    await typeName(offSite, 'bob');
    await offSite.page.waitForSelector('#name-error:not([hidden])', { timeout: DEADLINE_MS });
    assert.match(await offSite.page.evaluate<string>(`document.getElementById('name-error').textContent`), /Cannot reach the chat server/);
    const ws = `ws://127.0.0.1:${muxd.httpPort}`;
    assert.deepEqual(sockets, [`${ws}/ops/mx`, `${ws}/.well-known/muxd/mx`], 'no socket left the site');
  } finally {
    for (const p of pages) await p.page.close();
    await muxd.stop();
  }
});
