// MX/1 over WebSocket: one binary message is exactly one MX/1 frame (src/ws/mx.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkMxMessage, wsMaxMessage } from '../../src/ws/mx.js';
import { encodeFrame, encodeHeader } from '../../src/wire/frame.js';
import { ErrorCode, HEADER_SIZE, Type } from '../../src/wire/protocol.js';

const frameBytes = (type: number, id: number, payload = Buffer.alloc(0)): Buffer => Buffer.concat(encodeFrame(type, id, payload));

interface Case {
  name: string;
  message: Buffer;
  /** Expected: a frame (type, id, payload) or an ERROR code. */
  want: { type: number; id: number; payload: string } | { error: number };
}

const MAX = 1000;
const CASES: Case[] = [
  { name: 'PING with no payload', message: frameBytes(Type.PING, 7), want: { type: Type.PING, id: 7, payload: '' } },
  { name: 'SAY with a payload', message: frameBytes(Type.SAY, 0xffffffff, Buffer.from('hello')), want: { type: Type.SAY, id: 0xffffffff, payload: 'hello' } },
  { name: 'payload exactly at --max-frame', message: frameBytes(Type.SAY, 1, Buffer.alloc(MAX, 0x61)), want: { type: Type.SAY, id: 1, payload: 'a'.repeat(MAX) } },
  { name: 'empty message: shorter than a header (ERROR 1)', message: Buffer.alloc(0), want: { error: ErrorCode.BAD_MAGIC_OR_VERSION } },
  { name: '11 bytes: shorter than a header (ERROR 1)', message: frameBytes(Type.PING, 1).subarray(0, 11), want: { error: ErrorCode.BAD_MAGIC_OR_VERSION } },
  { name: 'bad magic (ERROR 1)', message: Buffer.concat([Buffer.from('XX'), frameBytes(Type.PING, 1).subarray(2)]), want: { error: ErrorCode.BAD_MAGIC_OR_VERSION } },
  { name: 'version 2 (ERROR 1)', message: (() => { const b = frameBytes(Type.PING, 1); b[2] = 2; return b; })(), want: { error: ErrorCode.BAD_MAGIC_OR_VERSION } },
  { name: 'declared length over --max-frame (ERROR 2), with its payload', message: frameBytes(Type.SAY, 1, Buffer.alloc(MAX + 1)), want: { error: ErrorCode.FRAME_TOO_LARGE } },
  { name: 'declared length over --max-frame (ERROR 2), header alone', message: encodeHeader(Type.SAY, 1, 0xffffffff), want: { error: ErrorCode.FRAME_TOO_LARGE } },
  { name: 'shorter than its header says (ERROR 1)', message: Buffer.concat([encodeHeader(Type.SAY, 1, 5), Buffer.from('abc')]), want: { error: ErrorCode.BAD_MAGIC_OR_VERSION } },
  { name: 'longer than its header says (ERROR 1)', message: Buffer.concat([encodeHeader(Type.SAY, 1, 3), Buffer.from('abcde')]), want: { error: ErrorCode.BAD_MAGIC_OR_VERSION } },
  { name: 'two frames in one message (ERROR 1)', message: Buffer.concat([frameBytes(Type.PING, 1), frameBytes(Type.PING, 2)]), want: { error: ErrorCode.BAD_MAGIC_OR_VERSION } },
];

for (const c of CASES) {
  test(`ws mx: ${c.name}`, () => {
    const got = checkMxMessage(c.message, MAX);
    if ('error' in c.want) {
      assert.ok(!got.ok, 'refused');
      assert.equal(got.code, c.want.error);
      assert.ok(got.message.length > 0);
    } else {
      assert.ok(got.ok, got.ok ? '' : got.message);
      assert.deepEqual({ type: got.type, id: got.id, payload: got.payload.toString() }, c.want);
    }
  });
}

test('ws mx: the payload is a view of the message; the WebSocket limit is --max-frame + the header', () => {
  const m = frameBytes(Type.SAY, 1, Buffer.from('xyz'));
  const got = checkMxMessage(m, MAX);
  assert.ok(got.ok);
  assert.equal(got.payload.buffer, m.buffer);
  assert.equal(wsMaxMessage(MAX), MAX + HEADER_SIZE);
});
