// The generator's WebSocket mode must hand the MX/1 stream over unchanged: the deframer strips
// server frame headers of every length form at every split point, and the ws peer answers PING
// with the same id and payload, one frame per message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FrameScanner, MX, encodeFrame } from '../../bench/lib/mx.js';
import { WS_OP, WsDeframer, clientEncoder, parseResponseHead, wsHandshake } from '../../bench/lib/ws.js';
import { binaryHeader, encodeClose, encodePing, serverFrameHeader } from '../../src/ws/sender.js';

function serverMessage(payload: Buffer): Buffer {
  return Buffer.concat([binaryHeader(payload.length), payload]);
}

test('WsDeframer passes binary payloads through and reports control frames, whole and split at every byte', () => {
  const big = Buffer.alloc(70_000, 9); // 8-byte length form
  const mid = Buffer.alloc(300, 5); // 2-byte length form
  const small = encodeFrame(MX.PING_OK, 7, Buffer.from('hi'));
  const fragA = Buffer.from([1, 2, 3]);
  const fragB = Buffer.from([4, 5]);
  const stream = Buffer.concat([
    serverMessage(small),
    encodePing(Buffer.from('p!')),
    serverMessage(mid),
    serverFrameHeader(WS_OP.BINARY, fragA.length, false), fragA,
    serverFrameHeader(WS_OP.CONTINUATION, fragB.length, true), fragB,
    serverMessage(big),
    encodeClose(1001, 'bye'),
  ]);
  const expected = Buffer.concat([small, mid, fragA, fragB, big]);
  for (let cut = 0; cut <= stream.length; cut += cut < 400 ? 1 : 997) {
    const data: Buffer[] = [];
    const controls: string[] = [];
    const d = new WsDeframer({ data: (b) => data.push(Buffer.from(b)), control: (op, p) => controls.push(`${op}:${p.toString('latin1')}`) });
    d.push(stream.subarray(0, cut));
    d.push(stream.subarray(cut));
    assert.ok(Buffer.concat(data).equals(expected), `data at cut ${cut}`);
    assert.deepEqual(controls, [`${WS_OP.PING}:p!`, `${WS_OP.CLOSE}:\x03\xe9bye`], `controls at cut ${cut}`);
  }
});

test('WsDeframer keeps a trailing partial frame for the next push', () => {
  const data: Buffer[] = [];
  const d = new WsDeframer({ data: (b) => data.push(Buffer.from(b)), control: () => assert.fail('no control frame') });
  const two = Buffer.concat([serverMessage(Buffer.from('abc')), serverMessage(Buffer.from('defg'))]);
  d.push(two.subarray(0, 6)); // the first message and one header byte of the second
  assert.equal(Buffer.concat(data).toString(), 'abc');
  d.push(two.subarray(6));
  assert.equal(Buffer.concat(data).toString(), 'abcdefg');
});

test('WsDeframer refuses what a server may not send: masked frames, RSV bits, text', () => {
  const d = (): WsDeframer => new WsDeframer({ data: () => {}, control: () => {} });
  assert.throws(() => d().push(Buffer.from([0x82, 0x81, 1, 2, 3, 4, 0])), /masked/);
  assert.throws(() => d().push(Buffer.from([0xc2, 0x00])), /RSV/);
  assert.throws(() => d().push(Buffer.from([0x81, 0x01, 0x61])), /text/);
});

test('parseResponseHead reads the status and lower-cases field names', () => {
  const r = parseResponseHead('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: abc=');
  assert.equal(r.status, 101);
  assert.deepEqual(r.headers, [['upgrade', 'websocket'], ['sec-websocket-accept', 'abc=']]);
});

const PEERS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bench/peers');

test('ws-ping-server: handshake with mx1, PINGs echoed with id and payload, other types answered ERROR 3', async () => {
  const child = spawn(process.execPath, [path.join(PEERS, 'ws-ping-server.js'), '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error('no ready line in 10 s')), 10_000);
      child.stdout!.setEncoding('utf8').on('data', (s: string) => {
        out += s;
        const m = /127\.0\.0\.1:(\d+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
      child.once('exit', (code) => reject(new Error(`peer exited ${code}`)));
    });
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => resolve(s));
      s.once('error', reject);
    });
    const leftover = await wsHandshake(socket, '127.0.0.1', port, '/.well-known/muxd/mx');
    const seen: string[] = [];
    const scanner = new FrameScanner({ frame: (type, id, len, p) => seen.push(`${type}:${id}:${len}:${p?.toString('latin1') ?? '-'}`) });
    const deframer = new WsDeframer({ data: (b) => scanner.push(b), control: () => {} });
    deframer.push(leftover);
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${seen.length} replies: ${seen.join(' ')}`)), 5000);
      socket.on('data', (chunk: Buffer) => {
        deframer.push(chunk);
        if (seen.length >= 3) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    const enc = clientEncoder();
    socket.write(Buffer.concat([enc.binary(encodeFrame(MX.PING, 1)), enc.binary(encodeFrame(MX.SAY, 2, Buffer.from('x'))), enc.binary(encodeFrame(MX.PING, 3, Buffer.from('hello')))]));
    await done;
    assert.deepEqual(seen, [`${MX.PING_OK}:1:0:`, `${MX.ERROR}:0:2:\x00\x03`, `${MX.PING_OK}:3:5:hello`]);
    socket.destroy();
  } finally {
    child.kill();
  }
});
