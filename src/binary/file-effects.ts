// Runs the effects of one connection's transfers part (transfers.ts) against the FileStore and
// feeds their results back as events. Shared by every MX/1 driver that has files (the stream
// driver for TCP and Unix sockets; a WebSocket driver next): they only move bytes, this moves
// files. DATA for downloads leaves through the connection's Outbox, paced by the peer.
import type { ByteBudget } from '../loop/budget.js';
import { coarseNow } from '../loop/clock.js';
import type { FileStore, OpenFile, Upload } from '../store/files.js';
import { Type } from '../wire/protocol.js';
import type { FileEffect, FileEvent, Transfers } from './transfers.js';

/** DATA payload size for downloads: big enough to amortise headers, small next to the output limit. */
export const DOWNLOAD_CHUNK = 64 * 1024;
/** Smallest download chunk, once the server holds --max-output-total of unsent output. */
export const DOWNLOAD_CHUNK_MIN = 16 * 1024;

export interface FileEffectsOptions {
  store: FileStore;
  /** Unsent output of the whole server, shared with HTTP: download chunks shrink as it fills. */
  outputBudget: ByteBudget;
  /** Writes one frame (header and payload) to the connection's output. */
  sendFrame(type: number, id: number, payload: Buffer): void;
  /** True while a download must wait for the peer (the driver calls writable() when it clears). */
  congested(): boolean;
  /** After every event fed back: output may have changed, a LIST reserve been released. */
  after(): void;
  /** Test hook: a download found the output congested and waits. */
  onDownloadPaused?(): void;
}

/** One download being sent: a chunk at a time, the next once the peer took enough. */
interface Sending {
  t: number;
  id: number;
  file: OpenFile;
  position: number;
  end: number;
  /** A read is outstanding: it owns the descriptor until it lands. */
  reading: boolean;
  /** 'close' came: the descriptor closes once no read is outstanding. */
  closing: boolean;
}

export class FileEffects {
  private readonly opts: FileEffectsOptions;
  private readonly files: Transfers;
  /** Opened for reading, not yet sending (or already sent), by serial. */
  private readonly opened = new Map<number, OpenFile>();
  private readonly sending = new Map<number, Sending>();
  private readonly uploads = new Map<number, Upload>();
  /** Per download: bytes of its last chunk counted in the server-wide output budget. */
  private readonly budgetHeld = new Map<number, number>();
  private gone = false;

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

  /** The output drained: paced downloads go on. */
  writable(): void {
    for (const s of this.sending.values()) this.pump(s);
  }

  /** The connection is gone: budget given back. The core's close() queued the closes and aborts. */
  closed(): void {
    this.gone = true;
    for (const n of this.budgetHeld.values()) this.opts.outputBudget.sub(n);
    this.budgetHeld.clear();
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

  private open(t: number, name: string): void {
    this.opts.store.openForRead(name).then(
      (file) => {
        this.opened.set(t, file);
        this.event({ kind: 'opened', t, result: file });
      },
      (err: unknown) => this.event({ kind: 'opened', t, result: toError(err) }),
    );
  }

  private send(t: number, id: number, position: number, end: number): void {
    const file = this.opened.get(t)!;
    const s: Sending = { t, id, file, position, end, reading: false, closing: false };
    this.sending.set(t, s);
    this.pump(s);
  }

  /** Reads the next chunk if none is outstanding and the output has room. */
  private pump(s: Sending): void {
    if (s.reading || s.closing || s.position >= s.end || this.gone) return;
    if (this.opts.congested()) {
      this.opts.onDownloadPaused?.();
      return;
    }
    // A next read comes only once the socket took (nearly all of) the last chunk: that one is
    // no longer ours to count. The new one is, at a size the server-wide budget allows.
    const budget = this.opts.outputBudget;
    budget.sub(this.budgetHeld.get(s.t) ?? 0);
    const length = Math.min(s.end - s.position, budget.chunk(DOWNLOAD_CHUNK, DOWNLOAD_CHUNK_MIN));
    this.budgetHeld.set(s.t, length);
    budget.add(length);
    // A fresh Buffer per chunk: the socket keeps it until it is written.
    const buf = Buffer.allocUnsafe(length);
    s.reading = true;
    s.file.handle.read(buf, 0, length, s.position).then(
      ({ bytesRead }) => {
        s.reading = false;
        if (s.closing || this.gone) return this.finishClose(s);
        if (bytesRead === 0) return this.event({ kind: 'read-failed', t: s.t, error: new Error('file shrank while being sent') });
        this.opts.sendFrame(Type.DATA, s.id, bytesRead === length ? buf : buf.subarray(0, bytesRead));
        s.position += bytesRead;
        this.files.handle({ kind: 'queued', t: s.t, bytes: bytesRead }, coarseNow());
        this.run();
        this.pump(s);
        this.opts.after();
      },
      (err: unknown) => {
        s.reading = false;
        if (s.closing || this.gone) return this.finishClose(s);
        this.event({ kind: 'read-failed', t: s.t, error: toError(err) });
      },
    );
  }

  private closeRead(t: number): void {
    // The download is over; its last chunk is queued and no longer counted.
    this.opts.outputBudget.sub(this.budgetHeld.get(t) ?? 0);
    this.budgetHeld.delete(t);
    const s = this.sending.get(t);
    if (s !== undefined) {
      s.closing = true;
      // A read in flight closes the file when it lands.
      if (!s.reading) this.finishClose(s);
      return;
    }
    const file = this.opened.get(t);
    this.opened.delete(t);
    const done = (): void => this.event({ kind: 'closed', t });
    if (file === undefined) done();
    else file.handle.close().then(done, done);
  }

  private finishClose(s: Sending): void {
    if (!this.sending.delete(s.t)) return;
    this.opened.delete(s.t);
    const done = (): void => this.event({ kind: 'closed', t: s.t });
    s.file.handle.close().then(done, done);
  }

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

function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
