// Combined Log Format (Apache/nginx "combined"), buffered: lines collect in memory and are
// written at most every 200 ms or 64 KiB, so logging costs no syscall per request.
import { createWriteStream, type WriteStream } from 'node:fs';
import { headerValue, type RequestHead } from './types.js';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const FLUSH_BYTES = 64 * 1024;
const FLUSH_MS = 200;

function pad(n: number): string {
  return n < 10 ? '0' + n : String(n);
}

/** [10/Oct/2000:13:55:36 +0000], cached per second. */
let stampSecond = -1;
let stamp = '';
function clfTime(now: number): string {
  const second = Math.floor(now / 1000);
  if (second !== stampSecond) {
    stampSecond = second;
    const d = new Date(second * 1000);
    stamp = `[${pad(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000]`;
  }
  return stamp;
}

/** Quotes a request-controlled string the way nginx does: escape '"', '\' and non-printables. */
function quote(s: string | undefined): string {
  if (s === undefined || s === '') return '"-"';
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22 || c === 0x5c || c < 0x20 || c > 0x7e) out += '\\x' + c.toString(16).padStart(2, '0');
    else out += s[i];
  }
  return '"' + out + '"';
}

/** Every open file log, for SIGHUP. */
const openLogs = new Set<AccessLog>();

export class AccessLog {
  private lines: string[] = [];
  private bytes = 0;
  private timer: NodeJS.Timeout | null = null;
  private out: WriteStream | NodeJS.WriteStream;

  private failed = false;

  constructor(private readonly target: string) {
    this.out = this.open();
    if (target !== '-') openLogs.add(this);
  }

  private open(): WriteStream | NodeJS.WriteStream {
    const out = this.target === '-' ? process.stdout : createWriteStream(this.target, { flags: 'a' });
    // A log that cannot be written (disk full, file removed with its directory) must never take
    // the server down: say so once and stop logging.
    out.on('error', (err: Error) => {
      if (this.failed || out !== this.out) return;
      this.failed = true;
      this.lines = [];
      process.stderr.write(`muxd: access log disabled: ${err.message}\n`);
    });
    return out;
  }

  /**
   * logrotate's convention (SIGHUP): finish the old file and open the path again, so lines go to
   * the new file once the old one has been renamed away. A log that had failed starts again.
   */
  reopen(): void {
    if (this.target === '-') return;
    this.flush();
    const old = this.out as WriteStream;
    old.end();
    this.failed = false;
    this.out = this.open();
  }

  /** Reopens every open file log of this process. */
  static reopenAll(): void {
    for (const log of openLogs) log.reopen();
  }

  record(peer: { readonly remoteAddress?: string | undefined }, head: RequestHead | null, status: number, bytes: number): void {
    if (this.failed) return;
    const request = head === null ? '-' : `${head.method} ${head.target} HTTP/1.${head.versionMinor}`;
    const referer = head === null ? undefined : headerValue(head, 'referer');
    const agent = head === null ? undefined : headerValue(head, 'user-agent');
    // Bytes are the body sent, without the head; "-" when there was none (as Apache's %b).
    // Unix-socket peers have no address: "unix:", as nginx logs them. (A TCP socket's address
    // was read, and so cached, when it was accepted: it survives the socket's close.)
    const line = `${peer.remoteAddress ?? 'unix:'} - - ${clfTime(Date.now())} ${quote(request)} ${status} ${bytes === 0 ? '-' : bytes} ${quote(referer)} ${quote(agent)}\n`;
    this.lines.push(line);
    this.bytes += line.length;
    if (this.bytes >= FLUSH_BYTES) this.flush();
    else if (this.timer === null) {
      this.timer = setTimeout(() => this.flush(), FLUSH_MS);
      this.timer.unref();
    }
  }

  flush(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (this.lines.length === 0 || this.failed) return;
    this.out.write(this.lines.join(''));
    this.lines = [];
    this.bytes = 0;
  }

  close(): Promise<void> {
    openLogs.delete(this);
    this.flush();
    if (this.out === process.stdout) return Promise.resolve();
    return new Promise((resolve) => (this.out as WriteStream).end(resolve));
  }
}
