// The transfers sub-machine of the MX/1 core, sans-IO: PUT, GET and LIST, their ids, slots,
// timeouts and progress. It runs nothing itself: what needs the file system comes out as
// effect objects (poll()), and what the driver learnt comes back as events (handle()). Both
// carry the transfer's serial `t`, never the request id: a client may reuse an id as soon as
// its download's last byte is queued, while that file is still being closed.
//
// Only drivers that have files provide this part (TCP, Unix, WebSocket); a datagram core has
// none, and the session answers PUT/GET/LIST/AUTH with ERROR 3 itself.
import type { SlotBudget } from '../loop/budget.js';
import type { Metrics } from '../loop/metrics.js';
import type { FileEntry, FileInfo } from '../store/files.js';
import { checkUploadSize, validateFileName } from '../store/names.js';
import { WireError } from '../wire/frame.js';
import { decodeGet, decodePut, encodeFileInfo, encodeList } from '../wire/payloads.js';
import { ErrorCode, Type } from '../wire/protocol.js';

/** Limits of the transfers part, shared by every connection of a server. */
export interface TransfersConfig {
  /** Largest upload (ERROR 22 beyond). */
  maxUpload: number;
  /** Transfers in progress per connection (ERROR 51 beyond). */
  maxTransfers: number;
  /** Transfers in progress across the server: a slot is held from PUT/GET until the file is closed. */
  transfers: SlotBudget;
  /** A transfer with no progress for this long is aborted with ERROR 27. */
  transferTimeoutMs: number;
  /** SHA-256 of the upload token, or null: PUT only from local peers. */
  uploadDigest: Buffer | null;
}

/** What the driver runs for the transfers part; each names the event its result comes back as. */
export type FileEffect =
  /** Open `name` for reading, fstat and digest that descriptor -> 'opened'. */
  | { readonly kind: 'open'; readonly t: number; readonly name: string }
  /**
   * Send the opened file from `position` to `end` as DATA frames with `id`, paced by the
   * peer -> 'queued' per frame, or 'read-failed'. Stops at `end`, or at a 'close'.
   */
  | { readonly kind: 'send'; readonly t: number; readonly id: number; readonly position: number; readonly end: number }
  /** Stop sending and close the descriptor of `t` once no read is outstanding -> 'closed'. */
  | { readonly kind: 'close'; readonly t: number }
  /** List the store -> 'listed'. */
  | { readonly kind: 'list'; readonly t: number }
  /** Start an upload: the temp file opens now. A later write failure -> 'upload-failed'. */
  | { readonly kind: 'begin'; readonly t: number; readonly name: string; readonly size: number; readonly sha256: Buffer }
  /** Append bytes (a view the driver may keep until written: socket chunks are never reused). */
  | { readonly kind: 'write'; readonly t: number; readonly bytes: Buffer }
  /** Verify, fsync and rename -> 'committed'. */
  | { readonly kind: 'commit'; readonly t: number }
  /** Drop the upload, its temp file's name gone now -> 'closed' once its descriptor is closed. */
  | { readonly kind: 'abort'; readonly t: number };

/** What the driver reports back, in the order it happened. */
export type FileEvent =
  | { readonly kind: 'opened'; readonly t: number; readonly result: FileInfo | Error }
  /** One DATA frame of `bytes` file bytes is queued for the peer. */
  | { readonly kind: 'queued'; readonly t: number; readonly bytes: number }
  /** A read failed, or the file ended before `end` (it shrank): the send has stopped. */
  | { readonly kind: 'read-failed'; readonly t: number; readonly error: Error }
  | { readonly kind: 'listed'; readonly t: number; readonly result: FileEntry[] | Error }
  | { readonly kind: 'upload-failed'; readonly t: number; readonly error: Error }
  | { readonly kind: 'committed'; readonly t: number; readonly result: FileInfo | Error }
  /** A read descriptor or an aborted upload's descriptor is closed: its slot is free. */
  | { readonly kind: 'closed'; readonly t: number };

/** How the transfers part answers: through the session, which knows whether the connection is gone. */
export interface Replies {
  send(type: number, id: number, payload?: Buffer): void;
  error(id: number, code: number, message: string): void;
  /** Any failure: typed ones answer their code, the rest 50. */
  fail(id: number, err: unknown): void;
}

/** Output bytes the peer's side has taken so far: progress for the GET transfer timeout. */
export type Taken = () => number;

interface Upload {
  kind: 'put';
  t: number;
  id: number;
  name: string;
  size: number;
  sha256: Buffer;
  received: number;
  /** 'begin' was emitted (first DATA, or commit of an empty file). */
  begun: boolean;
  committing: boolean;
  /** No reply may be sent for it any more (aborted, failed, timed out, connection gone). */
  dead: boolean;
  progressAt: number;
  slot: boolean;
}

const enum File {
  Opening,
  Open,
  /** 'close' was emitted: 'closed' frees the slot. */
  Closing,
  None,
}

const enum Dl {
  Opening,
  Streaming,
  /** The last byte is queued (or it failed, or was cut): waiting for the close. */
  Closing,
}

interface Download {
  kind: 'get';
  t: number;
  id: number;
  offset: number;
  state: Dl;
  position: number;
  size: number;
  /** The id is still held on this connection (freed with the last byte queued). */
  holdsId: boolean;
  file: File;
  progressAt: number;
  takenMark: number;
  slot: boolean;
}

type Transfer = Upload | Download;

export class Transfers {
  /** Request ids held by transfers (PUT until its reply; GET until its last byte is queued). */
  private readonly byId = new Map<number, Transfer>();
  /** Every transfer still holding something (a slot, a descriptor), by serial. */
  private readonly byT = new Map<number, Transfer>();
  /** LISTs being built: serial -> request id. */
  private readonly listIds = new Map<number, number>();
  private readonly effects: FileEffect[] = [];
  private effectsAt = 0;
  private nextT = 1;
  private closed = false;

  constructor(
    readonly cfg: TransfersConfig,
    private readonly metrics: Metrics,
    /** The largest reply payload: LIST_OK is cut to fit (its count says how many). */
    private readonly maxReply: number,
    private readonly replies: Replies,
    private readonly taken: Taken,
  ) {}

  /** Requests still owed an answer or bytes. */
  get busy(): boolean {
    return this.byId.size > 0 || this.listIds.size > 0;
  }

  /** Output reserved for replies being built (LIST_OK, counted at its largest). */
  get reservedOutput(): number {
    return this.listIds.size * this.maxReply;
  }

  /** Uploads awaiting DATA or committing, downloads in progress. */
  get inFlight(): number {
    return this.byId.size;
  }

  /** The next effect to run, in order; undefined when none is queued. */
  poll(): FileEffect | undefined {
    if (this.effectsAt === this.effects.length) return undefined;
    const e = this.effects[this.effectsAt++]!;
    if (this.effectsAt === this.effects.length) {
      this.effects.length = 0;
      this.effectsAt = 0;
    }
    return e;
  }

  // ---- requests ------------------------------------------------------------------------

  /** `refusal`: why this connection may not upload (the session's AUTH rules), or null. */
  put(id: number, payload: Buffer, now: number, refusal: string | null): void {
    const { size, sha256, name } = decodePut(payload);
    if (refusal !== null) throw new WireError(ErrorCode.FORBIDDEN, refusal);
    this.checkRoom(id);
    const nfc = validateFileName(name);
    checkUploadSize(size, this.cfg.maxUpload);
    this.takeSlot();
    const x: Upload = {
      kind: 'put', t: this.nextT++, id, name: nfc, size, sha256: Buffer.from(sha256), received: 0,
      begun: false, committing: false, dead: false, progressAt: now, slot: true,
    };
    this.byId.set(id, x);
    this.byT.set(x.t, x);
    this.metrics.count('binary.uploads');
    if (size === 0) this.commit(x);
  }

  data(id: number, payload: Buffer, now: number): void {
    const x = this.byId.get(id);
    if (payload.length === 0) return; // carries nothing, overflows nothing
    // All declared bytes arrived: the upload is committing and may already be renamed into
    // place, so it can no longer be aborted truthfully. Later DATA is discarded, like DATA for
    // no open upload, and the PUT_OK or ERROR 23 goes out as usual.
    if (x === undefined || x.kind !== 'put' || x.committing || x.dead) {
      this.metrics.count('binary.dataDiscarded');
      return;
    }
    // More bytes than the PUT declared, before the commit began: the content is not what was promised.
    if (x.received + payload.length > x.size) {
      this.killUpload(x, ErrorCode.MALFORMED, `DATA beyond the declared size of ${x.size} bytes; upload aborted`);
      return;
    }
    // The temp file opens with the first byte, not with the PUT: a PUT alone holds no descriptor.
    if (!x.begun) this.begin(x);
    x.received += payload.length;
    x.progressAt = now;
    this.effects.push({ kind: 'write', t: x.t, bytes: payload });
    this.metrics.count('binary.bytesIn', payload.length);
    if (x.received === x.size) this.commit(x);
  }

  get(id: number, payload: Buffer, now: number): void {
    const { offset, name } = decodeGet(payload);
    this.checkRoom(id);
    this.takeSlot();
    const x: Download = {
      kind: 'get', t: this.nextT++, id, offset, state: Dl.Opening, position: offset, size: 0,
      holdsId: true, file: File.Opening, progressAt: now, takenMark: 0, slot: true,
    };
    this.byId.set(id, x);
    this.byT.set(x.t, x);
    this.metrics.count('binary.downloads');
    this.effects.push({ kind: 'open', t: x.t, name });
  }

  list(id: number): void {
    const t = this.nextT++;
    this.listIds.set(t, id);
    this.effects.push({ kind: 'list', t });
  }

  // ---- events --------------------------------------------------------------------------

  handle(ev: FileEvent, now: number): void {
    switch (ev.kind) {
      case 'opened':
        return this.onOpened(ev.t, ev.result, now);
      case 'queued':
        return this.onQueued(ev.t, ev.bytes);
      case 'read-failed':
        return this.onReadFailed(ev.t, ev.error);
      case 'listed':
        return this.onListed(ev.t, ev.result);
      case 'upload-failed':
        return this.onUploadFailed(ev.t, ev.error);
      case 'committed':
        return this.onCommitted(ev.t, ev.result);
      case 'closed':
        return this.onClosed(ev.t);
    }
  }

  private onOpened(t: number, result: FileInfo | Error, now: number): void {
    const x = this.byT.get(t);
    if (x === undefined || x.kind !== 'get') return;
    x.file = result instanceof Error ? File.None : File.Open;
    if (x.state !== Dl.Opening) {
      // Cut while opening (connection gone, shutdown): no reply, just close.
      this.closeFile(x);
      return;
    }
    if (result instanceof Error) {
      this.endDownload(x);
      this.replies.fail(x.id, result);
      return;
    }
    if (x.offset > result.size) {
      this.endDownload(x);
      this.replies.error(x.id, ErrorCode.OFFSET_BEYOND_END, `offset ${x.offset} is beyond the end of the file (${result.size} bytes)`);
      return;
    }
    x.size = result.size;
    // GET_OK describes the descriptor we stream from: its fstat size, its digest.
    this.replies.send(Type.GET_OK, x.id, encodeFileInfo(result.size, result.sha256));
    if (x.position >= x.size) {
      this.endDownload(x);
      return;
    }
    x.state = Dl.Streaming;
    x.progressAt = now;
    x.takenMark = this.taken();
    this.effects.push({ kind: 'send', t, id: x.id, position: x.position, end: x.size });
  }

  private onQueued(t: number, bytes: number): void {
    const x = this.byT.get(t);
    if (x === undefined || x.kind !== 'get' || x.state !== Dl.Streaming) return;
    this.metrics.count('binary.bytesOut', bytes);
    x.position += bytes;
    // The last byte is queued: the id is free for the client's next request.
    if (x.position >= x.size) this.endDownload(x);
  }

  private onReadFailed(t: number, error: Error): void {
    const x = this.byT.get(t);
    if (x === undefined || x.kind !== 'get' || x.state !== Dl.Streaming) return;
    const id = x.id;
    this.endDownload(x);
    this.replies.fail(id, error);
  }

  private onListed(t: number, result: FileEntry[] | Error): void {
    const id = this.listIds.get(t);
    if (id === undefined) return;
    this.listIds.delete(t);
    if (this.closed) return;
    if (result instanceof Error) this.replies.fail(id, result);
    else this.replies.send(Type.LIST_OK, id, encodeList(result, this.maxReply));
  }

  /** A write failed (a full disk): the reply goes now, not after the last DATA. */
  private onUploadFailed(t: number, error: Error): void {
    const x = this.byT.get(t);
    if (x === undefined || x.kind !== 'put' || x.dead || x.committing) return;
    x.dead = true;
    this.byId.delete(x.id);
    this.effects.push({ kind: 'abort', t });
    this.replies.fail(x.id, error);
  }

  private onCommitted(t: number, result: FileInfo | Error): void {
    const x = this.byT.get(t);
    if (x === undefined || x.kind !== 'put') return;
    if (x.dead) return; // aborted meanwhile (connection gone): 'closed' frees it
    this.byId.delete(x.id);
    this.releaseSlot(x);
    if (result instanceof Error) this.replies.fail(x.id, result);
    else this.replies.send(Type.PUT_OK, x.id, encodeFileInfo(result.size, result.sha256));
  }

  private onClosed(t: number): void {
    const x = this.byT.get(t);
    if (x === undefined) return;
    if (x.kind === 'get') x.file = File.None;
    this.releaseSlot(x);
  }

  // ---- time ----------------------------------------------------------------------------

  /** Earliest time tick() has something to do; 0 = nothing armed. */
  nextDeadline(): number {
    if (this.byId.size === 0) return 0;
    let at = 0;
    for (const x of this.byId.values()) {
      if (x.kind === 'put' ? x.committing || x.dead : x.state !== Dl.Streaming) continue;
      const due = x.progressAt + this.cfg.transferTimeoutMs;
      if (at === 0 || due < at) at = due;
    }
    return at;
  }

  /** Aborts transfers without progress for the transfer timeout (ERROR 27). */
  tick(now: number): void {
    if (this.byId.size === 0) return;
    const limit = this.cfg.transferTimeoutMs;
    const taken = this.taken();
    for (const x of [...this.byId.values()]) {
      if (x.kind === 'put') {
        if (x.committing || x.dead || now - x.progressAt < limit) continue;
        this.metrics.count('binary.transferTimeouts');
        this.killUpload(x, ErrorCode.TRANSFER_TIMEOUT, `transfer timed out: no DATA for ${limit} ms after ${x.received} of ${x.size} bytes; upload aborted`);
      } else if (x.state === Dl.Streaming) {
        // Progress is the peer taking our output, not merely our queueing it.
        if (taken > x.takenMark) {
          x.takenMark = taken;
          x.progressAt = now;
          continue;
        }
        if (now - x.progressAt < limit) continue;
        this.metrics.count('binary.transferTimeouts');
        this.endDownload(x);
        this.replies.error(x.id, ErrorCode.TRANSFER_TIMEOUT, `transfer timed out: the reader took nothing for ${limit} ms at byte ${x.position} of ${x.size}`);
      }
    }
  }

  // ---- lifecycle -----------------------------------------------------------------------

  /** The peer sends nothing more: uploads still waiting for DATA get ERROR 4 and are dropped. */
  halfClosed(): void {
    for (const x of [...this.byId.values()]) {
      if (x.kind !== 'put' || x.committing || x.dead) continue;
      this.killUpload(x, ErrorCode.MALFORMED, `connection half-closed after ${x.received} of ${x.size} bytes; upload aborted`);
    }
  }

  /** Shutdown timeout: uploads still in progress get ERROR 51 and are dropped, downloads cut. True if work was cut. */
  abort(): boolean {
    let cut = false;
    for (const x of [...this.byId.values()]) {
      cut = true;
      if (x.kind === 'put') {
        // A committing upload's rename may be under way: it finishes or fails on its own; no claim is made.
        if (x.dead || x.committing) continue;
        this.killUpload(x, ErrorCode.BUSY, `server shutting down: upload aborted after ${x.received} of ${x.size} bytes`);
      } else {
        this.endDownload(x);
      }
    }
    return cut || this.listIds.size > 0;
  }

  /** The connection is gone: uploads are dropped (temp files removed), files closed; no reply any more. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const x of [...this.byT.values()]) {
      if (x.kind === 'put') {
        this.byId.delete(x.id);
        if (!x.dead) {
          x.dead = true;
          this.dropUpload(x);
        }
      } else {
        this.endDownload(x);
      }
    }
  }

  // ---- internals -----------------------------------------------------------------------

  /** The id is free and the connection below --max-transfers, or throws ERROR 24/51. */
  private checkRoom(id: number): void {
    if (this.byId.has(id)) throw new WireError(ErrorCode.ID_IN_USE, `id ${id} already has a transfer in progress`);
    const limit = this.cfg.maxTransfers;
    if (this.byId.size >= limit) {
      throw new WireError(ErrorCode.BUSY, `too many transfers in progress on this connection (limit ${limit}, --max-transfers)`);
    }
  }

  /** Takes a server-wide transfer slot (the last check: a refused request holds none), or throws ERROR 51. */
  private takeSlot(): void {
    if (!this.cfg.transfers.tryAcquire()) {
      this.metrics.count('binary.busy');
      throw new WireError(ErrorCode.BUSY, `server busy: ${this.cfg.transfers.limit} transfers in progress (--max-transfers-total); retry later`);
    }
  }

  private begin(x: Upload): void {
    x.begun = true;
    this.effects.push({ kind: 'begin', t: x.t, name: x.name, size: x.size, sha256: x.sha256 });
  }

  private commit(x: Upload): void {
    if (!x.begun) this.begin(x);
    x.committing = true;
    this.effects.push({ kind: 'commit', t: x.t });
  }

  /** Answers `code` for the upload, drops it (temp file removed at once) and frees its id. */
  private killUpload(x: Upload, code: number, message: string): void {
    x.dead = true;
    this.byId.delete(x.id);
    this.dropUpload(x);
    this.replies.error(x.id, code, message);
  }

  private dropUpload(x: Upload): void {
    if (x.begun) this.effects.push({ kind: 'abort', t: x.t });
    else this.releaseSlot(x);
  }

  /** The download is over (done, failed, cut): its id is free at once, its file closes. */
  private endDownload(x: Download): void {
    if (x.holdsId) {
      x.holdsId = false;
      this.byId.delete(x.id);
    }
    if (x.state === Dl.Closing) return;
    x.state = Dl.Closing;
    // An open in flight closes it when it lands ('opened').
    this.closeFile(x);
  }

  private closeFile(x: Download): void {
    if (x.file === File.Open) {
      x.file = File.Closing;
      this.effects.push({ kind: 'close', t: x.t });
    } else if (x.file === File.None) {
      this.releaseSlot(x);
    }
  }

  private releaseSlot(x: Transfer): void {
    if (!x.slot) return;
    x.slot = false;
    this.byT.delete(x.t);
    this.cfg.transfers.release();
  }
}
