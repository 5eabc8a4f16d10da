// The file store behind MX/1 PUT/GET/LIST; HTTP serves the same directory at /files/. It knows no
// protocol: it fails with StoreError kinds (errors.ts), which each face maps to its own codes.
// Uploads go to a dotfile temp in the same directory (invisible to LIST and to HTTP, which hides
// dotfiles), are hashed while written, fsynced, verified, then renamed into place: rename(2) is
// atomic within one file system, so a reader sees the old file or the new one, never a partial one,
// and concurrent PUTs of one name resolve as "last rename wins".
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { mkdir, open, readdir, rename, stat, statfs, unlink, type FileHandle } from 'node:fs/promises';
import { constants, unlinkSync } from 'node:fs';
import path from 'node:path';
import { adoptFile, type OpenFile as Descriptor } from '../loop/open-file.js';
import { StoreError, checkUploadSize, validateFileName } from './names.js';

export const TEMP_PREFIX = '.upload-';

// The pure parts (no file system) live in names.ts: the protocol core imports them from there
// without loading node:fs; everyone else may keep importing them from here.
export { StoreError, validateFileName };

export interface FileEntry {
  size: number;
  name: string;
}

export interface FileInfo {
  size: number;
  sha256: Buffer;
}

/**
 * A file opened for a download: the server's one open-file type (loop/open-file.ts: the
 * descriptor pins the inode, so a concurrent replace cannot tear it; the file sender reads
 * from it), with the size and whole-file digest GET_OK announces. The caller holds one
 * reference to `file`.
 */
export interface ReadFile extends FileInfo {
  file: Descriptor;
  /**
   * The same descriptor as a FileHandle, for readers that have not moved to the file sender
   * yet; closing it or releasing `file`'s last reference closes both.
   */
  handle: FileHandle;
}

/** @deprecated The store's former name for ReadFile (kept while src/binary/stream.ts uses it). */
export type OpenFile = ReadFile;

interface DigestCacheEntry {
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  sha256: Buffer;
}

const READ_CHUNK = 64 * 1024;

/** The one file-system call uploads make through a seam, so tests can inject ENOSPC. */
export interface StoreIo {
  openTemp(path: string): Promise<FileHandle>;
}

// 'wx': never clobber; 0o644 so HTTP can serve the result.
const realIo: StoreIo = { openTemp: (p) => open(p, 'wx', 0o644) };

/** Errors that mean the volume is full: StoreError('no-space'), never an internal error. */
function isFull(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

export class FileStore {
  readonly dir: string;
  readonly maxUpload: number;
  readonly io: StoreIo;
  /** SHA-256 per name, valid while inode, size and mtime match: GET_OK needs the whole file's digest. */
  private readonly digests = new Map<string, DigestCacheEntry>();

  private constructor(dir: string, maxUpload: number, io: StoreIo) {
    this.dir = dir;
    this.maxUpload = maxUpload;
    this.io = io;
  }

  /** Creates the directory if needed and removes temps a crash left behind. */
  static async open(dir: string, maxUpload: number, io: StoreIo = realIo): Promise<FileStore> {
    const abs = path.resolve(dir);
    await mkdir(abs, { recursive: true });
    const store = new FileStore(abs, maxUpload, io);
    await store.removeStaleTemps();
    return store;
  }

  async removeStaleTemps(): Promise<number> {
    let removed = 0;
    for (const name of await readdir(this.dir)) {
      if (!name.startsWith(TEMP_PREFIX)) continue;
      await unlink(path.join(this.dir, name)).catch(() => undefined);
      removed++;
    }
    return removed;
  }

  /** Regular, visible files with their sizes, sorted by name. */
  async list(): Promise<FileEntry[]> {
    const entries = await readdir(this.dir, { withFileTypes: true });
    const out: FileEntry[] = [];
    for (const e of entries) {
      // isFile() is false for symlinks and directories: LIST shows only what PUT could have made.
      if (e.name.startsWith('.') || !e.isFile()) continue;
      try {
        const st = await stat(path.join(this.dir, e.name));
        out.push({ size: st.size, name: e.name });
      } catch {
        // Removed between readdir and stat: simply not listed.
      }
    }
    // Byte order of the UTF-8 names (= code point order): the same in every client language.
    out.sort((a, b) => Buffer.compare(Buffer.from(a.name, 'utf8'), Buffer.from(b.name, 'utf8')));
    return out;
  }

  /** Opens a file for reading with its size and whole-file digest. Throws StoreError 'bad-name' or 'not-found'. */
  async openForRead(name: string): Promise<ReadFile> {
    const nfc = validateFileName(name);
    let handle: FileHandle;
    try {
      // O_NOFOLLOW: a symlink planted in the store must not lead outside it (LIST and HTTP
      // already hide symlinks; GET must agree).
      handle = await open(path.join(this.dir, nfc), constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR' || code === 'ELOOP') throw new StoreError('not-found', `no such file: ${nfc}`);
      throw err;
    }
    try {
      const st = await handle.stat({ bigint: true });
      if (!st.isFile()) throw new StoreError('not-found', `no such file: ${nfc}`);
      let cached = this.digests.get(nfc);
      if (!cached || cached.ino !== st.ino || cached.size !== st.size || cached.mtimeNs !== st.mtimeNs) {
        cached = { ino: st.ino, size: st.size, mtimeNs: st.mtimeNs, sha256: await hashHandle(handle) };
        this.digests.set(nfc, cached);
      }
      // The number form for the OpenFile (what HTTP's heads use too); the digest cache above
      // keys on the nanosecond mtime, which only the bigint form keeps.
      const stats = await handle.stat();
      const file = adoptFile(handle.fd, stats, () => void handle.close().catch(() => undefined));
      return { file, handle, size: Number(st.size), sha256: cached.sha256 };
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw err;
    }
  }

  /** Throws StoreError('too-large') when `size` is over the upload limit. */
  checkUploadSize(size: number): void {
    checkUploadSize(size, this.maxUpload);
  }

  /**
   * Starts an upload. Returns at once: the temp file opens in the background when the first
   * bytes are written (or at commit, for an empty file), so a PUT that never sends DATA holds
   * no file descriptor. `onError` is called once if a write fails (a full disk, say), so the
   * caller can answer before the last byte arrives. Throws StoreError 'bad-name' or 'too-large'.
   */
  beginUpload(name: string, size: number, sha256: Buffer, onError?: (err: Error) => void): Upload {
    const nfc = validateFileName(name);
    this.checkUploadSize(size);
    return new Upload(this, nfc, size, Buffer.from(sha256), onError);
  }

  /** Maps a full volume to StoreError('no-space') with the free space in the text; other errors as they are. */
  async describeFailure(err: unknown): Promise<unknown> {
    if (!isFull(err)) return err;
    let free = 'unknown';
    try {
      const fs = await statfs(this.dir);
      free = `${fs.bavail * fs.bsize} bytes free`;
    } catch {
      // The message says "unknown" rather than failing the answer.
    }
    return new StoreError('no-space', `storage full (${(err as NodeJS.ErrnoException).code}): ${free} on the files volume; upload aborted`);
  }

  /** Called by Upload after a verified rename, so the next GET does not re-read the file. */
  remember(name: string, ino: bigint, size: bigint, mtimeNs: bigint, sha256: Buffer): void {
    this.digests.set(name, { ino, size, mtimeNs, sha256 });
  }
}

async function hashHandle(handle: FileHandle): Promise<Buffer> {
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(READ_CHUNK);
  let position = 0;
  for (;;) {
    const { bytesRead } = await handle.read(buf, 0, buf.length, position);
    if (bytesRead === 0) break;
    hash.update(buf.subarray(0, bytesRead));
    position += bytesRead;
  }
  return hash.digest();
}

/**
 * rename(2) over an existing file. Replacing a big file frees its blocks inside the rename when
 * it drops the last link (20-30 ms for 64 MiB on ext4, measured), so before the PUT_OK. The old
 * file is held open across the rename instead, and let go of after the reply: the blocks are
 * freed then, by that close, in the thread pool. The rename is as atomic as ever.
 */
async function replace(from: string, to: string): Promise<void> {
  // O_NOFOLLOW: never open what a symlink at the name points to; O_NONBLOCK: nor wait on a FIFO.
  const old = await open(to, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch(() => null);
  try {
    await rename(from, to);
  } finally {
    if (old !== null) setImmediate(() => void old.close().catch(() => undefined));
  }
}

/** Bytes an upload writes between two write-backs (see Upload.syncAhead). */
const SYNC_AHEAD = 8 * 1024 * 1024;

/** Writes every byte of `bufs` (`bytes` in all) at the file position, in order, in as few writev calls as it takes. */
async function writeAll(handle: FileHandle, bufs: Buffer[], bytes: number): Promise<void> {
  let done = 0;
  for (;;) {
    const { bytesWritten } = await handle.writev(bufs);
    if (bytesWritten === 0) throw Object.assign(new Error('write: no bytes written'), { code: 'EIO' });
    done += bytesWritten;
    if (done >= bytes) return;
    // A short write (rare on a regular file): drop what went out and write the rest.
    let skip = bytesWritten;
    while (skip >= bufs[0]!.length) skip -= bufs.shift()!.length;
    if (skip > 0) bufs[0] = bufs[0]!.subarray(skip);
  }
}

/** One PUT in progress: bytes are hashed as they arrive and written in order to the temp file. */
export class Upload {
  readonly name: string;
  readonly size: number;
  readonly expected: Buffer;
  readonly tempPath: string;
  /** Bytes accepted so far (hashed, queued for writing). */
  received = 0;
  /** Bytes accepted but not yet on disk: the caller pauses its socket while this is high. */
  queued = 0;
  private readonly store: FileStore;
  private readonly hash: Hash = createHash('sha256');
  /** The temp file, opened on the first write: null until then. */
  private opened: Promise<FileHandle> | null = null;
  private chain: Promise<void> = Promise.resolve();
  /** Bytes accepted while a write runs: the next write takes all of them. */
  private pending: Buffer[] = [];
  /** A flush is running or queued on the chain. */
  private flushing = false;
  /** Bytes written since the last write-back started, and that write-back while it runs. */
  private unsynced = 0;
  private syncing: Promise<void> | null = null;
  private failure: Error | null = null;
  private aborted = false;
  private drainWaiters: (() => void)[] = [];
  private onError: ((err: Error) => void) | undefined;

  constructor(store: FileStore, name: string, size: number, expected: Buffer, onError?: (err: Error) => void) {
    this.store = store;
    this.name = name;
    this.size = size;
    this.expected = expected;
    this.onError = onError;
    this.tempPath = path.join(store.dir, TEMP_PREFIX + randomBytes(8).toString('hex'));
  }

  get complete(): boolean {
    return this.received === this.size;
  }

  /** Whether the temp file was asked for (it holds a descriptor from then on). */
  get started(): boolean {
    return this.opened !== null;
  }

  private open(): Promise<FileHandle> {
    if (this.opened === null) {
      this.opened = this.store.io.openTemp(this.tempPath).then(async (handle) => {
        // Aborted while opening: the file was created after abort() looked for it.
        if (this.aborted) {
          await handle.close().catch(() => undefined);
          await unlink(this.tempPath).catch(() => undefined);
        }
        return handle;
      });
      // Seen by the write chain or commit; this only keeps an early rejection from being unhandled.
      this.opened.catch(() => undefined);
    }
    return this.opened;
  }

  private failed(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    const cb = this.onError;
    this.onError = undefined;
    if (cb && !this.aborted) {
      void this.store.describeFailure(err).then((described) => cb(described as Error));
    }
  }

  /**
   * Accepts the next bytes. The caller checks received + chunk.length <= size first. They are
   * hashed now, on the main thread, while earlier bytes are being written in the thread pool;
   * whatever arrived during a write leaves in the next one, a single writev (a pool round trip
   * per DATA frame cost more than the disk did).
   */
  write(chunk: Buffer): void {
    this.received += chunk.length;
    this.queued += chunk.length;
    this.hash.update(chunk);
    this.pending.push(chunk);
    if (this.flushing) return;
    this.flushing = true;
    const opened = this.open();
    this.chain = this.chain.then(() => this.flush(opened));
  }

  /** Writes what is pending, batch after batch, until nothing is; never rejects. */
  private async flush(opened: Promise<FileHandle>): Promise<void> {
    let handle: FileHandle | null = null;
    try {
      handle = await opened;
    } catch (err) {
      this.failed(err as Error);
    }
    while (this.pending.length > 0) {
      const batch = this.pending;
      this.pending = [];
      let bytes = 0;
      for (const b of batch) bytes += b.length;
      try {
        if (handle !== null && !this.failure && !this.aborted) {
          await writeAll(handle, batch, bytes);
          this.syncAhead(handle, bytes);
        }
      } catch (err) {
        this.failed(err as Error);
      } finally {
        this.queued -= bytes;
        if (this.queued === 0) this.wakeDrainWaiters();
      }
    }
    this.flushing = false;
  }

  /**
   * Starts writing back every SYNC_AHEAD bytes (a datasync on another pool thread, not awaited
   * by the writes), so the fsync before the rename finds little left to flush and the disk works
   * while the rest arrives. Its errors are the final fsync's to report.
   */
  private syncAhead(handle: FileHandle, bytes: number): void {
    this.unsynced += bytes;
    if (this.unsynced < SYNC_AHEAD || this.syncing !== null) return;
    this.unsynced = 0;
    this.syncing = handle.datasync().then(
      () => undefined,
      () => undefined,
    ).finally(() => {
      this.syncing = null;
    });
  }

  /** Resolves when every queued byte has been written (or the upload failed). */
  drained(): Promise<void> {
    if (this.queued === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private wakeDrainWaiters(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }

  /**
   * After all `size` bytes: flush, fsync, verify, rename into place. Throws StoreError
   * 'digest-mismatch' or 'no-space' (or 'aborted'); on any failure the temp file is removed and
   * nothing becomes visible.
   */
  async commit(): Promise<FileInfo> {
    const digest = this.hash.digest();
    this.onError = undefined; // the commit's own rejection reports it
    await this.chain;
    let handle: FileHandle | null = null;
    try {
      handle = await this.open();
      await this.syncing;
      if (this.failure) throw this.failure;
      if (this.aborted) throw new StoreError('aborted', 'upload aborted');
      if (!digest.equals(this.expected)) {
        throw new StoreError('digest-mismatch', `checksum mismatch: got ${digest.toString('hex')}, expected ${this.expected.toString('hex')}`);
      }
      // fsync before rename: otherwise a crash could leave the new name pointing at empty blocks.
      await handle.sync();
      const st = await handle.stat({ bigint: true });
      await handle.close();
      handle = null;
      if (this.aborted) throw new StoreError('aborted', 'upload aborted');
      await replace(this.tempPath, path.join(this.store.dir, this.name));
      this.store.remember(this.name, st.ino, st.size, st.mtimeNs, digest);
      return { size: this.size, sha256: digest };
    } catch (err) {
      if (handle) await handle.close().catch(() => undefined);
      await unlink(this.tempPath).catch(() => undefined);
      throw await this.store.describeFailure(err);
    }
  }

  /**
   * Drops the upload (disconnect, timeout, shutdown, DATA overflow). The temp file's name is
   * removed at once, synchronously, so that a process about to exit leaves nothing behind;
   * queued writes then go to the unlinked inode and the descriptor is closed after them.
   * Once commit() has begun the rename may already be done, so no reply may claim the abort
   * kept the file out: the core aborts a committing upload only when the connection is gone.
   */
  async abort(): Promise<void> {
    if (this.aborted) return;
    this.aborted = true;
    if (this.opened !== null) {
      try {
        unlinkSync(this.tempPath);
      } catch {
        // Not created yet (the opener removes it) or already renamed or removed.
      }
    }
    await this.chain;
    if (this.opened === null) return;
    await this.syncing;
    try {
      const handle = await this.opened;
      await handle.close().catch(() => undefined);
    } catch {
      // Never opened: nothing to close.
    }
  }
}
