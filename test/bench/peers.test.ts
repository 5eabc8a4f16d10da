// The bench's ceiling peers must do the protocol work they stand for: the raw HTTP peer answers
// each pipelined request once, the MX/1 ping peer echoes each PING with its id and payload.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { FrameScanner, encodeFrame, MX } from '../../bench/lib/mx.js';

const PEERS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bench/peers');

async function startPeer(name: string, args: string[] = []): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [path.join(PEERS, `${name}.js`), '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      const m = /127\.0\.0\.1:(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`${name} exited ${code}`)));
  });
  return { child, port };
}

function collect(socket: Socket, bytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    const timer = setTimeout(() => reject(new Error(`only ${n} of ${bytes} bytes`)), 3000);
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      n += c.length;
      if (n >= bytes) {
        clearTimeout(timer);
        // Wait a moment: an extra answer would show up as surplus bytes.
        setTimeout(() => resolve(Buffer.concat(chunks)), 50);
      }
    });
  });
}

const open = (port: number): Promise<Socket> =>
  new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });

test('raw-net answers each of three pipelined requests once, heads split across writes', async () => {
  const { child, port } = await startPeer('raw-net', ['--bytes', '1319']);
  try {
    const s = await open(port);
    const reqs = Buffer.from('GET /1k.txt HTTP/1.1\r\nHost: a\r\n\r\n'.repeat(3));
    const got = collect(s, 3 * 1319);
    s.write(reqs.subarray(0, 30)); // ends between the CR and LF of a header line
    await new Promise((r) => setTimeout(r, 20));
    s.write(reqs.subarray(30, 64)); // ends between the two CRLFs of the second head
    await new Promise((r) => setTimeout(r, 20));
    s.write(reqs.subarray(64));
    const body = await got;
    assert.equal(body.length, 3 * 1319);
    assert.equal(body.toString('latin1').split('HTTP/1.1 200 OK').length - 1, 3);
    s.destroy();
  } finally {
    child.kill();
  }
});

test('ping-server echoes id and payload for split and pipelined PINGs, errors other types', async () => {
  const { child, port } = await startPeer('ping-server');
  try {
    const s = await open(port);
    const frames = Buffer.concat([encodeFrame(MX.PING, 1), encodeFrame(MX.PING, 2, Buffer.alloc(1024, 7)), encodeFrame(MX.SAY, 3, Buffer.from('x')), encodeFrame(MX.PING, 4, Buffer.from('hi'))]);
    const seen: string[] = [];
    const scanner = new FrameScanner({ frame: (type, id, len, p) => seen.push(`${type}:${id}:${len}:${p?.every((b) => b === (len === 1024 ? 7 : b)) ?? '-'}`) });
    const got = collect(s, 12 + 12 + 1024 + 14 + 14);
    s.write(frames.subarray(0, 5));
    await new Promise((r) => setTimeout(r, 20));
    s.write(frames.subarray(5, 600));
    await new Promise((r) => setTimeout(r, 20));
    s.write(frames.subarray(600));
    scanner.push(await got);
    assert.deepEqual(seen, [`${MX.PING_OK}:1:0:true`, `${MX.PING_OK}:2:1024:true`, `${MX.ERROR}:0:2:true`, `${MX.PING_OK}:4:2:true`]);
    s.destroy();
  } finally {
    child.kill();
  }
});
