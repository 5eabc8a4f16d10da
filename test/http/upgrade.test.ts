// Upgrades through the HTTP server's registry, with a test-only echo protocol: replies before
// the upgrade go first, bytes right behind the head arrive as leftover (never parsed as HTTP),
// and an unregistered protocol is answered 500.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startHttpServer } from '../../src/http/server.js';
import type { Connection } from '../../src/loop/listener.js';
import type { BytePipe } from '../../src/loop/pipe.js';
import { statusLine } from '../../src/http/status.js';
import type { Handler, RequestHead, UpgradeProtocol } from '../../src/http/types.js';
import { testServerOptions, textReply } from '../helpers/http-scripted.js';
import { parserFactory } from '../../src/http/parsers.js';
import { waitFor } from '../helpers/wait.js';

/** Echoes every byte back, prefixed by the leftover; its Connection is what the listener keeps. */
const echo: UpgradeProtocol = (pipe: BytePipe, leftover: Buffer, _head: RequestHead): Connection => {
  if (leftover.length > 0) pipe.write(leftover);
  pipe.on('data', (c) => pipe.write(c));
  pipe.on('end', () => pipe.end());
  pipe.on('error', () => pipe.destroy());
  pipe.resume();
  return { deadline: 0, onDeadline: () => {}, drain: () => pipe.end() };
};

const handler: Handler = {
  handle(head) {
    if (head.target === '/echo' || head.target === '/nowhere') {
      const reply = { status: 101, head: statusLine(101).replace('Unknown', 'Switching Protocols') + 'Upgrade: echo\r\nConnection: Upgrade\r\n', body: [], bodyLength: 0 };
      return { upgrade: head.target === '/echo' ? 'echo' : 'nowhere', reply };
    }
    return textReply(`plain ${head.target}`);
  },
};

/** Sends the pieces (one write each, a tick apart), reads until `want` is seen or 5 s pass. */
async function exchange(port: number, pieces: string[], want: string): Promise<string> {
  const socket = net.connect(port, '127.0.0.1');
  let got = '';
  socket.on('data', (c: Buffer) => (got += c.toString('latin1')));
  await new Promise<void>((r) => socket.once('connect', () => r()));
  for (const p of pieces) {
    socket.write(p);
    await new Promise((r) => setTimeout(r, 20));
  }
  const end = Date.now() + 5000;
  while (!got.includes(want) && Date.now() < end && !socket.destroyed) await new Promise((r) => setTimeout(r, 5));
  socket.destroy();
  return got;
}

const UP = 'GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n';

test('upgrade: pipelined request answered first, then the 101, then leftover in the same chunk echoed, not parsed', async () => {
  const server = await startHttpServer(testServerOptions(handler, { upgrades: new Map([['echo', echo]]) }));
  const port = server.listener.port;
  try {
    const got = await exchange(port, ['GET /a HTTP/1.1\r\nHost: x\r\n\r\n' + UP + 'GET /b HTTP/1.1\r\n\r\n'], 'GET /b HTTP/1.1\r\n\r\n');
    const i = got.indexOf('plain /a');
    const j = got.indexOf('HTTP/1.1 101 ');
    assert.ok(i >= 0 && j > i, got);
    const afterHead = got.slice(got.indexOf('\r\n\r\n', j) + 4);
    assert.equal(afterHead, 'GET /b HTTP/1.1\r\n\r\n');
    assert.ok(!/Connection: (close|keep-alive)/.test(got.slice(j)), 'no Connection field of ours on the 101');
    assert.ok(!got.includes('plain /b'));
  } finally {
    await server.close();
  }
});

test('upgrade: bytes split across chunks after the head are leftover, then live bytes, all echoed', async () => {
  const server = await startHttpServer(testServerOptions(handler, { upgrades: new Map([['echo', echo]]) }));
  const port = server.listener.port;
  try {
    const got = await exchange(port, [UP.slice(0, 10), UP.slice(10) + 'GET /x', ' HTTP/1.1\r\n\r\n', 'tail'], 'tail');
    const afterHead = got.slice(got.indexOf('\r\n\r\n') + 4);
    assert.equal(afterHead, 'GET /x HTTP/1.1\r\n\r\ntail');
    // The listener keeps counting it: one open connection, swept by the new protocol's Connection.
  } finally {
    await server.close();
  }
});

test('upgrade: an unregistered protocol name is answered 500 and the connection closed', async () => {
  const server = await startHttpServer(testServerOptions(handler, { upgrades: new Map([['echo', echo]]) }));
  const port = server.listener.port;
  try {
    const got = await exchange(port, [UP.replace('/echo', '/nowhere')], '\r\n\r\n500');
    assert.match(got, /^HTTP\/1\.1 500 /);
    assert.match(got, /Connection: close/);
  } finally {
    await server.close();
  }
});

// Issue 14 leftovers: a client that half-closes while its upgrade is still being decided, and the
// upgrade path on llhttp as well as on our parser.
for (const parser of ['muxd', 'llhttp'] as const) {
  test(`upgrade (${parser}): a client half-closes while the upgrade is held; the 101, the leftover and the end still reach the new protocol`, async () => {
    let release: () => void = () => {};
    const decided = new Promise<void>((r) => (release = r));
    const slow: Handler = {
      async handle(head) {
        await decided;
        return handler.handle(head);
      },
    };
    let ended = false;
    const protocols = new Map([
      [
        'echo',
        ((pipe, leftover, head) => {
          pipe.on('end', () => (ended = true));
          return echo(pipe, leftover, head);
        }) as UpgradeProtocol,
      ],
    ]);
    const server = await startHttpServer(testServerOptions(slow, { upgrades: protocols, parserFactory: parserFactory(parser) }));
    const socket = net.connect(server.listener.port, '127.0.0.1');
    let got = '';
    let closed = false;
    socket.on('data', (c: Buffer) => (got += c.toString('latin1')));
    socket.on('close', () => (closed = true));
    try {
      await new Promise<void>((r) => socket.once('connect', () => r()));
      // The head, the first bytes of the new protocol, then FIN, all before the handler answers.
      socket.end(UP + 'first bytes');
      await new Promise((r) => setTimeout(r, 50));
      release();
      await waitFor(() => closed, { what: 'the connection to close after the echo ended', timeoutMs: 5000, detail: () => JSON.stringify(got) });
      assert.match(got, /^HTTP\/1\.1 101 /);
      assert.equal(got.slice(got.indexOf('\r\n\r\n') + 4), 'first bytes');
      assert.ok(ended, "the new protocol saw the client's end");
    } finally {
      socket.destroy();
      await server.close();
    }
  });

  test(`upgrade (${parser}): bytes in the same packet as the head are leftover, not parsed`, async () => {
    const server = await startHttpServer(testServerOptions(handler, { upgrades: new Map([['echo', echo]]), parserFactory: parserFactory(parser) }));
    try {
      const got = await exchange(server.listener.port, [UP + 'GET /b HTTP/1.1\r\n\r\n'], 'GET /b HTTP/1.1\r\n\r\n');
      assert.match(got, /^HTTP\/1\.1 101 /);
      assert.equal(got.slice(got.indexOf('\r\n\r\n') + 4), 'GET /b HTTP/1.1\r\n\r\n');
    } finally {
      await server.close();
    }
  });
}
