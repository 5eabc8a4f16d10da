// A scripted MX/1 server for client tests: node:net plus src/wire, nothing from src/binary.
// Each test passes a handler that sees every decoded frame and answers (or not) as it likes.
import { createHash } from 'node:crypto';
import net from 'node:net';
import { encodeFrame, FrameDecoder, type Frame } from '../../src/wire/frame.js';
import { decodeGet, decodePut, encodeError, encodeFileInfo, encodeList, encodeNames } from '../../src/wire/payloads.js';
import { ErrorCode, Type } from '../../src/wire/protocol.js';

export interface FakeConn {
  socket: net.Socket;
  /** Writes one frame; returns socket.write's result. */
  send(type: number, id: number, payload?: Uint8Array): boolean;
  error(id: number, code: number, message: string): void;
}

export type Handler = (frame: Frame, conn: FakeConn) => void;

export interface FakeServer {
  port: number;
  server: net.Server;
  conns: FakeConn[];
  close(): Promise<void>;
}

export async function startFake(handler: Handler, listen: { path?: string } = {}): Promise<FakeServer> {
  const conns: FakeConn[] = [];
  const server = net.createServer((socket) => {
    const decoder = new FrameDecoder(8 * 1024 * 1024);
    const conn: FakeConn = {
      socket,
      send(type, id, payload) {
        let ok = true;
        socket.cork();
        for (const part of encodeFrame(type, id, payload)) ok = socket.write(part);
        socket.uncork();
        return ok;
      },
      error(id, code, message) {
        conn.send(Type.ERROR, id, encodeError(code, message));
      },
    };
    conns.push(conn);
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      decoder.push(chunk);
      for (let f = decoder.next(); f !== null; f = decoder.next()) {
        // Copy: handlers may keep payloads (uploads) beyond this chunk's life.
        handler({ type: f.type, id: f.id, payload: Buffer.from(f.payload) }, conn);
      }
    });
  });
  await new Promise<void>((resolve) => {
    if (listen.path !== undefined) server.listen(listen.path, resolve);
    else server.listen(0, '127.0.0.1', resolve);
  });
  const addr = server.address();
  return {
    port: typeof addr === 'object' && addr !== null ? addr.port : 0,
    server,
    conns,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of conns) c.socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A handler with a tiny in-memory file store: PUT (+DATA), GET, LIST, PING; other types get UNKNOWN_TYPE. */
export function fileStoreHandler(files: Map<string, Buffer>, chunk = 64 * 1024): Handler {
  const uploads = new Map<number, { name: string; size: number; sha256: Buffer; parts: Buffer[]; got: number }>();
  const finishUpload = (id: number, conn: FakeConn): void => {
    const up = uploads.get(id)!;
    if (up.got < up.size) return;
    uploads.delete(id);
    const data = Buffer.concat(up.parts);
    const digest = createHash('sha256').update(data).digest();
    if (!digest.equals(up.sha256)) return conn.error(id, ErrorCode.CHECKSUM_MISMATCH, 'checksum mismatch');
    files.set(up.name, data);
    conn.send(Type.PUT_OK, id, encodeFileInfo(data.length, digest));
  };
  return (frame, conn) => {
    const { type, id, payload } = frame;
    switch (type) {
      case Type.PING:
        conn.send(Type.PING_OK, id, payload);
        return;
      case Type.PUT: {
        const put = decodePut(payload);
        uploads.set(id, { ...put, parts: [], got: 0 });
        finishUpload(id, conn);
        return;
      }
      case Type.DATA: {
        const up = uploads.get(id);
        if (!up) return;
        up.parts.push(payload);
        up.got += payload.length;
        finishUpload(id, conn);
        return;
      }
      case Type.GET: {
        const { offset, name } = decodeGet(payload);
        const data = files.get(name);
        if (!data) return conn.error(id, ErrorCode.NOT_FOUND, `no such file "${name}"`);
        if (offset > data.length) return conn.error(id, ErrorCode.OFFSET_BEYOND_END, 'offset beyond end');
        conn.send(Type.GET_OK, id, encodeFileInfo(data.length, createHash('sha256').update(data).digest()));
        for (let at = offset; at < data.length; at += chunk) conn.send(Type.DATA, id, data.subarray(at, Math.min(at + chunk, data.length)));
        return;
      }
      case Type.LIST:
        conn.send(Type.LIST_OK, id, encodeList([...files].map(([name, data]) => ({ name, size: data.length }))));
        return;
      case Type.NAMES:
        conn.send(Type.NAMES_OK, id, encodeNames([]));
        return;
      default:
        conn.error(id, ErrorCode.UNKNOWN_TYPE, `unknown type ${type}`);
    }
  };
}
