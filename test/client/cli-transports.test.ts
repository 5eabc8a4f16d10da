// The client commands over WebSocket and TLS as a user runs them (`node dist/src/cli/main.js`
// child processes), against the real MX/1 core behind the bridges of ./bridges.ts: --url ws://
// and wss://, --tls --ca, --servername, --insecure's warning, and the usage errors.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runMuxd } from '../helpers/muxd-process.js';
import { testCerts } from '../helpers/tls-certs.js';
import { waitFor } from '../helpers/wait.js';
import { connect } from '../../src/client/index.js';
import { startBridged, type Bridged, type TlsBridge, type WsBridge } from './bridges.js';
import { ADMIN_TOKEN, type RealServer } from './real-server.js';

let real: RealServer;
let wsb: WsBridge;
let wssb: WsBridge;
let tlsb: TlsBridge;
let bridged: Bridged;
const work = mkdtempSync(path.join(os.tmpdir(), 'muxd-cli-tls-'));

before(async () => {
  bridged = await startBridged();
  ({ real, wsb, wssb, tlsb } = bridged);
});
after(async () => {
  await bridged.stop();
  rmSync(work, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function muxd(args: string[], input = ''): Promise<Run> {
  return runMuxd(args, { cwd: work, input, clean: true, timeoutMs: 30_000 });
}

const WARNING = /^muxd: warning: --insecure: the server's certificate is not verified/m;

describe('CLI over WebSocket and TLS', () => {
  test('ping --url ws:// and wss:// --ca, ping --tls --ca', async () => {
    const ca = testCerts().caFile;
    for (const [args, via] of [
      [['--url', wsb.url], 'over WebSocket'],
      [['--url', wssb.url, '--ca', ca], 'over WebSocket/TLS'],
      [['--tls', '--port', String(tlsb.port), '--ca', ca], 'over TLS'],
      [['--tls', '--host', '127.0.0.1', '--port', String(tlsb.port), '--ca', ca, '--servername', 'localhost'], 'over TLS'],
    ] as const) {
      const r = await muxd(['ping', '--count', '2', '--interval', '0', ...args]);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`\\(MX/1 ${via}\\): 56 bytes`));
      assert.match(r.stdout, /2 pings transmitted, 2 received, 0% loss/);
      assert.equal(r.stderr, '');
    }
  });

  test('put, ls, get, stats, announce over --url and --tls', async () => {
    const ca = testCerts().caFile;
    const data = randomBytes(300_000);
    writeFileSync(path.join(work, 'up.bin'), data);
    const ws = ['--url', wsb.url];
    const tls = ['--tls', '--port', String(tlsb.port), '--ca', ca];
    assert.equal((await muxd(['put', 'up.bin', '--as', 'cli-ws.bin', ...ws])).code, 0);
    const ls = await muxd(['ls', '--json', ...tls]);
    assert.equal(ls.code, 0, ls.stderr);
    assert.ok((JSON.parse(ls.stdout) as { name: string; size: number }[]).some((e) => e.name === 'cli-ws.bin' && e.size === data.length));
    const got = await muxd(['get', 'cli-ws.bin', '-o', 'down.bin', ...tls]);
    assert.equal(got.code, 0, got.stderr);
    assert.ok(readFileSync(path.join(work, 'down.bin')).equals(data));
    const stats = await muxd(['stats', '--json', '--url', wssb.url, '--ca', ca]);
    assert.equal(stats.code, 0, stats.stderr);
    assert.equal(typeof (JSON.parse(stats.stdout) as { connections: unknown }).connections, 'object');
    const ann = await muxd(['announce', 'over', 'websocket', '--token', ADMIN_TOKEN, ...ws]);
    assert.deepEqual([ann.code, ann.stdout], [0, 'announced\n']);
  });

  test('chat --url: a WebSocket CLI member and a TCP member share the room', async () => {
    const tcp = await connect({ port: real.port, timeoutMs: 5000 });
    try {
      const seen: string[] = [];
      tcp.on('userJoined', (who: string) => seen.push(`joined ${who}`));
      tcp.on('message', (from: string, text: string) => seen.push(`${from}: ${text}`));
      tcp.on('userLeft', (who: string) => seen.push(`left ${who}`));
      await tcp.join('tcpmember');
      const r = await muxd(['chat', '--name', 'cliws', '--url', wsb.url], 'hello over ws\n');
      assert.equal(r.code, 0, r.stderr);
      await waitFor(() => seen.length === 3 || undefined, { what: 'join, message and leave at the TCP member', detail: () => seen.join(', ') });
      assert.deepEqual(seen, ['joined cliws', 'cliws: hello over ws', 'left cliws']);
    } finally {
      await tcp.close();
    }
  });

  test('without the CA the certificate is refused: exit 1 with a clear message', async () => {
    for (const args of [['--tls', '--port', String(tlsb.port)], ['--url', wssb.url]]) {
      const r = await muxd(['ping', '--count', '1', ...args]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^muxd: tls: the certificate of \S+ could not be verified .*--ca FILE/m);
    }
    const wrongName = await muxd(['ping', '--count', '1', '--tls', '--port', String(tlsb.port), '--ca', testCerts().caFile, '--servername', 'elsewhere.example']);
    assert.equal(wrongName.code, 1);
    assert.match(wrongName.stderr, /^muxd: tls: .*not valid for the name asked for/m);
  });

  test('--insecure connects without verifying and warns on stderr every time', async () => {
    for (let i = 0; i < 2; i++) {
      const r = await muxd(['ping', '--count', '1', '--tls', '--port', String(tlsb.port), '--insecure']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, WARNING);
    }
    const ls = await muxd(['ls', '--url', wssb.url, '--insecure']);
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stderr, WARNING);
  });

  test('usage errors exit 2: --udp with --tls or --url, TLS flags without TLS, --url with --port, a bad url', async () => {
    const cases: [string[], RegExp][] = [
      [['ping', '--udp', '--tls'], /--udp is plaintext only: it does not go with --tls/],
      [['stats', '--udp', '--url', wsb.url], /--udp is plaintext only: it does not go with --url/],
      [['ls', '--ca', testCerts().caFile], /--ca needs --tls or a wss:\/\/ --url/],
      [['ls', '--insecure'], /--insecure needs --tls or a wss:\/\/ --url/],
      [['ls', '--url', wsb.url, '--servername', 'x'], /--servername needs --tls or a wss:\/\/ --url/],
      [['ls', '--url', wsb.url, '--port', '1'], /--url and --port do not go together/],
      [['ls', '--url', 'http://127.0.0.1/'], /--url: .*ws:\/\/ or wss:\/\//],
      [['ls', '--url', wsb.url, '--tls'], /--tls with a ws:\/\/ url/],
      [['ls', '--tls', '--ca', path.join(work, 'missing.pem')], /--ca \S+: no such file/],
    ];
    for (const [args, re] of cases) {
      const r = await muxd(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.match(r.stderr, /Connection flags/);
    }
  });

  test('--help documents the flags', async () => {
    const r = await muxd(['get', '--help']);
    assert.equal(r.code, 0);
    for (const flag of ['--url URL', '--tls', '--ca FILE', '--servername', '--insecure']) assert.ok(r.stdout.includes(flag), flag);
  });
});
