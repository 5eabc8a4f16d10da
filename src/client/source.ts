// What an upload reads from: a file (streamed twice, once to hash and once to send, so a huge
// file never sits in memory) or a buffer the caller already holds (sliced into views, never copied).
import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { LocalCode, MuxError } from './errors.js';

/** DATA frame size for uploads: big enough to amortise headers, far under the 1 MiB default frame cap. */
export const UPLOAD_CHUNK = 64 * 1024;
/** Read size while hashing; the buffer is reused, so it costs one allocation per upload. */
const HASH_READ = 256 * 1024;

export interface UploadSource {
  readonly size: number;
  readonly sha256: Buffer;
  /** The content as chunks of at most UPLOAD_CHUNK bytes, exactly `size` bytes in all. */
  chunks(): AsyncGenerator<Buffer>;
  close(): Promise<void>;
}

export function bufferSource(data: Uint8Array): UploadSource {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const sha256 = createHash('sha256').update(buf).digest();
  return {
    size: buf.length,
    sha256,
    async *chunks() {
      for (let at = 0; at < buf.length; at += UPLOAD_CHUNK) yield buf.subarray(at, Math.min(at + UPLOAD_CHUNK, buf.length));
    },
    close: async () => {},
  };
}

export async function fileSource(path: string): Promise<UploadSource> {
  const handle = await open(path, 'r');
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new MuxError(LocalCode.LOCAL, `${path} is not a regular file`);
    const size = stat.size;
    const sha256 = await hashRange(handle, size, path);
    return {
      size,
      sha256,
      chunks: () => readChunks(handle, size, path),
      close: () => handle.close(),
    };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

async function hashRange(handle: FileHandle, size: number, path: string): Promise<Buffer> {
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(Math.min(HASH_READ, Math.max(size, 1)));
  let pos = 0;
  while (pos < size) {
    const { bytesRead } = await handle.read(buf, 0, Math.min(buf.length, size - pos), pos);
    if (bytesRead === 0) throw shrank(path);
    hash.update(buf.subarray(0, bytesRead));
    pos += bytesRead;
  }
  return hash.digest();
}

async function* readChunks(handle: FileHandle, size: number, path: string): AsyncGenerator<Buffer> {
  let pos = 0;
  while (pos < size) {
    // A fresh buffer per chunk: the socket holds it until the kernel has taken it.
    const buf = Buffer.allocUnsafe(Math.min(UPLOAD_CHUNK, size - pos));
    let filled = 0;
    while (filled < buf.length) {
      const { bytesRead } = await handle.read(buf, filled, buf.length - filled, pos + filled);
      if (bytesRead === 0) throw shrank(path);
      filled += bytesRead;
    }
    pos += filled;
    yield buf;
  }
}

function shrank(path: string): MuxError {
  return new MuxError(LocalCode.LOCAL, `${path} became shorter while it was being read`);
}
