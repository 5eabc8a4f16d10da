// Random WebSocket frames against a real server (serve() in this process, so an exception
// anywhere in the driver fails the run): valid MX/1 messages mixed with frames of any opcode,
// flags, masking, length (lies included) and payload, cut into random pieces; the client then
// half-closes. Properties: the server ends every such connection, never crashes, every message
// it sends is a well-formed frame a client reads, what the codecs retain stays within its bound,
// and afterwards it still answers a clean client, with no WebSocket left open.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RawWs, serveInProcess, type InProcess } from '../helpers/ws-raw.js';
import { waitFor } from '../helpers/wait.js';
import { frame, type RawFrame } from './build.js';
import { encodeFrame } from '../../src/wire/frame.js';
import { Type } from '../../src/wire/protocol.js';
import { MAX_CONTROL_PAYLOAD, MAX_HEADER_SIZE } from '../../src/ws/constants.js';

const MAX_FRAME = 64 * 1024;
/** A message at the limit, a control frame, and one paused read of the socket (see src/ws/pipe.ts). */
const RETAINED_BOUND = MAX_FRAME + 12 + MAX_HEADER_SIZE + MAX_CONTROL_PAYLOAD + 2 * 64 * 1024;

let srv: InProcess;
before(async () => {
  srv = await serveInProcess(['--max-frame', '64KiB', '--ws-ping-interval', '0']);
});
after(async () => {
  await srv?.stop();
});

const mx = (type: number, id: number, payload: Uint8Array): Buffer => Buffer.concat(encodeFrame(type, id, Buffer.from(payload)));

const validMessage = fc
  .record({ type: fc.constantFrom(Type.PING, Type.STATS, Type.NAMES, Type.JOIN, Type.SAY, Type.LEAVE, 0x7e), id: fc.nat(), payload: fc.uint8Array({ maxLength: 64 }) })
  .map(({ type, id, payload }): RawFrame => ({ opcode: 2, payload: mx(type, id, payload) }));

const anyFrame = fc.record(
  {
    opcode: fc.constantFrom(0, 1, 2, 3, 7, 8, 9, 10, 11, 15),
    fin: fc.boolean(),
    rsv: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 7 }) }),
    payload: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
    mask: fc.oneof({ weight: 6, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constant(null) }),
    declared: fc.oneof({ weight: 6, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 2 ** 40 }) }),
  },
  { requiredKeys: ['opcode', 'fin', 'rsv', 'payload'] },
);

const session = fc.record({
  frames: fc.array(fc.oneof(validMessage, anyFrame), { minLength: 1, maxLength: 12 }),
  cuts: fc.array(fc.nat({ max: 400 }), { maxLength: 8 }),
});

test('random frames: the server ends each connection, stays up, sends only well-formed frames, retains within bounds', async () => {
  let maxRetained = 0;
  await fc.assert(
    fc.asyncProperty(session, async ({ frames, cuts }) => {
      const bytes = Buffer.concat(frames.map((f) => frame(f)));
      const c = await RawWs.upgraded(srv.httpPort);
      try {
        let at = 0;
        for (const n of cuts) {
          if (at >= bytes.length) break;
          c.send(bytes.subarray(at, at + n + 1));
          at += n + 1;
          maxRetained = Math.max(maxRetained, srv.running.metrics.snapshot().gauges.wsRetainedBytes ?? 0);
        }
        c.send(bytes.subarray(at));
        c.socket.end(); // the client sends nothing more: the server must finish and end too
        await waitFor(() => c.closed || c.ended, { what: 'the server to end the connection', timeoutMs: 5000 });
        // Everything the server sent parsed as frames (RawWs's client-role receiver would have
        // stopped on a malformed one) and each message is one MX/1 frame.
        for (const e of c.events) {
          assert.notEqual(e.kind, 'fail', 'the server\'s bytes are well-formed frames');
          if (e.kind !== 'message') continue;
          assert.ok(e.data.length >= 12 && e.data.readUInt32BE(8) === e.data.length - 12, 'one MX/1 frame per message');
        }
      } finally {
        c.destroy();
      }
    }),
    { numRuns: 60 },
  );
  assert.ok(maxRetained <= RETAINED_BOUND, `retained ${maxRetained} <= ${RETAINED_BOUND}`);
  await waitFor(() => srv.running.metrics.snapshot().connections.ws === 0, { what: 'every WebSocket closed', timeoutMs: 5000 });
  const probe = await RawWs.upgraded(srv.httpPort, frame({ opcode: 2, payload: mx(Type.PING, 1, Buffer.from('alive')) }));
  const e = await probe.event(0);
  assert.ok(e.kind === 'message' && e.data[3] === Type.PING_OK);
  probe.destroy();
});

test('a message declared at the limit is buffered up to it, one byte over is refused from its header (1009)', async () => {
  // At the limit: the whole message is held until complete, then answered.
  const atLimit = mx(Type.PING, 2, Buffer.alloc(MAX_FRAME));
  const c = await RawWs.upgraded(srv.httpPort, frame({ opcode: 2, payload: atLimit }));
  const e = await c.event(0);
  assert.ok(e.kind === 'message' && e.data[3] === Type.PING_OK && e.data.length === atLimit.length);
  c.destroy();
  const over = await RawWs.upgraded(srv.httpPort, frame({ opcode: 2, declared: MAX_FRAME + 13 }));
  assert.equal((await over.closeFrame()).code, 1009);
  over.destroy();
});
