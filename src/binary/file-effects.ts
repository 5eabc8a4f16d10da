// Runs the effects of one connection's transfers part (transfers.ts) against the FileStore and
// feeds their results back as events. Shared by every MX/1 driver that has files (the stream
// driver for TCP and Unix sockets; a WebSocket driver next): they only move bytes, this moves
// files. DATA for downloads goes through the shared file sender (src/loop/file-sender.ts, the
// one HTTP bodies use): pooled chunks of up to four 64 KiB frames, the 12-byte header in front
// of each payload, one read per chunk, one write per frame, the next frame once the peer took
// the last.
import type { ByteBudget } from '../loop/budget.js';
import { ChunkPool, CHUNK_FULL, CHUNK_MIN } from '../loop/chunk-pool.js';
import { coarseNow } from '../loop/clock.js';
import { FileSender } from '../loop/file-sender.js';
import type { OpenFile } from '../loop/open-file.js';
import type { Outbox } from '../loop/outbox.js';
import type { FileStore, Upload } from '../store/files.js';
import { HEADER_SIZE, MAGIC, Type, VERSION } from '../wire/protocol.js';
import type { FileEffect, FileEvent, Transfers } from './transfers.js';

/**
 * Largest DATA frame a download writes: header and payload in 64 KiB. The socket holds at most
 * one such frame beyond what the kernel took (the slow-reader tests bound it by 64 KiB + 12);
 * a chunk (read at once, held by the server, counted in the output budget) holds up to
 * CHUNK_FULL / DOWNLOAD_CHUNK of them and grows and shrinks as HTTP's do.
 */
export const DOWNLOAD_CHUNK = 64 * 1024;
/** Largest pooled chunk for downloads: four frames per read (the same size as HTTP's). */
export const DOWNLOAD_READ = CHUNK_FULL;
/** Smallest download chunk, once the server holds --max-output-total of unsent output. */
export const DOWNLOAD_CHUNK_MIN = CHUNK_MIN;

/** The read buffers of MX/1 downloads, counted in the server-wide output budget. */
export function downloadPool(budget: ByteBudget): ChunkPool {
  return new ChunkPool(budget, DOWNLOAD_READ, DOWNLOAD_CHUNK_MIN);
}

export interface FileEffectsOptions {
  store: FileStore;
  /** Download read buffers (downloadPool), shared by the server's connections. */
  pool: ChunkPool;
  /** The connection's output: the file sender writes DATA frames to it. */
  outbox: Outbox;
  /** After every event fed back: output may have changed, a LIST reserve been released. */
  after(): void;
  /** Test hook: a download waits for the peer to take its last chunk. */
  onDownloadPaused?(): void;
}

/** One download's descriptor, from open until it is let go; `sender` once its DATA is under way. */
interface Download {
  file: OpenFile;
  sender: FileSender | null;
}

export class FileEffects {
  private readonly opts: FileEffectsOptions;
  private readonly files: Transfers;
  private readonly downloads = new Map<number, Download>();
  private readonly uploads = new Map<number, Upload>();

  constructor(files: Transfers, opts: FileEffectsOptions) {
    this.files = files;
    this.opts = opts;
  }

  /** Upload bytes accepted and not yet on disk. */
  get uploadBacklog(): number {
    let queued = 0;
    for (const u of this.uploads.values()) queued += u.queued;
    return queued;
  }

  get hasUploads(): boolean {
    return this.uploads.size > 0;
  }

  /** Resolves once every upload's queued bytes are written. */
  uploadsDrained(): Promise<unknown> {
    return Promise.all(Array.from(this.uploads.values(), (u) => u.drained()));
  }

  /** Runs every effect queued so far, in order. */
  run(): void {
    for (let e = this.files.poll(); e !== undefined; e = this.files.poll()) this.execute(e);
  }

  /** The output drained (outbox.drained() was true): paced downloads go on. */
  writable(): void {
    for (const d of this.downloads.values()) d.sender?.writable();
  }

  private event(ev: FileEvent): void {
    this.files.handle(ev, coarseNow());
    this.run();
    this.opts.after();
  }

  private execute(e: FileEffect): void {
    switch (e.kind) {
      case 'open':
        return this.open(e.t, e.name);
      case 'send':
        return this.send(e.t, e.id, e.position, e.end);
      case 'close':
        return this.closeRead(e.t);
      case 'list':
        return this.list(e.t);
      case 'begin':
        return this.begin(e.t, e.name, e.size, e.sha256);
      case 'write':
        // The payload is a view of a socket chunk that Node never reuses, so it can wait for the disk.
        this.uploads.get(e.t)?.write(e.bytes);
        return;
      case 'commit':
        return this.commit(e.t);
      case 'abort':
        return this.abort(e.t);
    }
  }

  // ---- downloads -----------------------------------------------------------------------

  private open(t: number, name: string): void {
    this.opts.store.openForRead(name).then(
      (read) => {
        this.downloads.set(t, { file: this.closing(t, read.file), sender: null });
        this.event({ kind: 'opened', t, result: read });
      },
      (err: unknown) => this.event({ kind: 'opened', t, result: toError(err) }),
    );
  }

  /**
   * The file as the sender holds it: letting go of it (the sender does once done or stopped,
   * after a read in flight lands) closes the descriptor and tells the core, which frees the slot.
   */
  private closing(t: number, file: OpenFile): OpenFile {
    let held = true;
    return {
      fd: file.fd,
      stats: file.stats,
      retain: () => file.retain(),
      release: () => {
        if (!held) return;
        held = false;
        this.downloads.delete(t);
        file.release();
        // Later, as a close is: the sender may be letting go inside its own callback.
        queueMicrotask(() => this.event({ kind: 'closed', t }));
      },
    };
  }

  private send(t: number, id: number, position: number, end: number): void {
    const d = this.downloads.get(t)!;
    const { outbox, onDownloadPaused } = this.opts;
    const sender = new FileSender(this.opts.pool, outbox, {
      file: d.file,
      start: position,
      end,
      headerRoom: HEADER_SIZE,
      maxPayload: DOWNLOAD_CHUNK - HEADER_SIZE,
      frame: (chunk, length) => writeDataHeader(chunk, id, length),
      onChunk: (bytes) => {
        this.files.handle({ kind: 'queued', t, bytes }, coarseNow());
        // The chunk waits in the socket: the next is read once the peer took it.
        if (outbox.backlog > 0) onDownloadPaused?.();
        this.run();
      },
      // null: the last chunk is out, which 'queued' told the core already.
      onDone: (err) => {
        if (err !== null) this.event({ kind: 'read-failed', t, error: err });
      },
    });
    d.sender = sender;
    sender.start();
  }

  private closeRead(t: number): void {
    const d = this.downloads.get(t);
    if (d === undefined) return; // the sender let go of it already: 'closed' is on its way
    // Sending: stop (the file goes once a read in flight lands). Never sent: let go now.
    if (d.sender !== null) d.sender.abort();
    else d.file.release();
  }

  // ---- LIST and uploads ----------------------------------------------------------------

  private list(t: number): void {
    this.opts.store.list().then(
      (entries) => this.event({ kind: 'listed', t, result: entries }),
      (err: unknown) => this.event({ kind: 'listed', t, result: toError(err) }),
    );
  }

  private begin(t: number, name: string, size: number, sha256: Buffer): void {
    const upload = this.opts.store.beginUpload(name, size, sha256, (err) => this.event({ kind: 'upload-failed', t, error: err }));
    this.uploads.set(t, upload);
  }

  private commit(t: number): void {
    const upload = this.uploads.get(t)!;
    upload.commit().then(
      (info) => {
        this.uploads.delete(t);
        this.event({ kind: 'committed', t, result: info });
      },
      (err: unknown) => {
        this.uploads.delete(t);
        this.event({ kind: 'committed', t, result: toError(err) });
      },
    );
  }

  private abort(t: number): void {
    const upload = this.uploads.get(t);
    this.uploads.delete(t);
    const done = (): void => this.event({ kind: 'closed', t });
    if (upload === undefined) done();
    else upload.abort().then(done, done);
  }
}

/** The MX/1 header of a DATA frame, written in the room the sender left before the payload. */
function writeDataHeader(chunk: Buffer, id: number, length: number): void {
  chunk.writeUInt16BE(MAGIC, 0);
  chunk[2] = VERSION;
  chunk[3] = Type.DATA;
  chunk.writeUInt32BE(id >>> 0, 4);
  chunk.writeUInt32BE(length, 8);
}

function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
