// The one open-file type of the server: a descriptor, reference-counted, with the fstat it was
// built from. A response or a download describes the descriptor it sends from (its size, its
// validators come from `stats`), and its bytes come from the same descriptor, so a file
// renamed over the name mid-transfer cannot tear it (Go's ServeContent, nginx's
// open_file_cache). HTTP's file regions and the store's downloads both hold one; the file
// sender (file-sender.ts) reads from it. No protocol here.
import { close, constants, fstat, open, type Stats } from 'node:fs';

export interface OpenFile {
  readonly fd: number;
  /** The fstat of this descriptor, taken when it was opened. */
  readonly stats: Stats;
  /** One more holder (a body region, a request waiting for a shared load, a sender). */
  retain(): void;
  /** One holder fewer; the last one closes the descriptor. Extra calls are ignored. */
  release(): void;
}

/**
 * O_NOFOLLOW: the path was resolved and checked already, so a symlink here means it was swapped
 * since (refuse, ELOOP). O_NONBLOCK: opening a FIFO swapped in must not block a pool thread;
 * it has no effect on regular files.
 */
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);

let openCount = 0;

/** Descriptors opened by openRegular and not yet closed (for tests and stats: a leak shows here). */
export function openFileCount(): number {
  return openCount;
}

class SharedFile implements OpenFile {
  private refs = 1;

  constructor(
    readonly fd: number,
    readonly stats: Stats,
    /** Closes the descriptor; called once, by the last release. */
    private readonly closeFd: (fd: number) => void,
  ) {}

  retain(): void {
    if (this.refs <= 0) throw new Error('retain of a closed file');
    this.refs++;
  }

  release(): void {
    if (this.refs <= 0) return;
    if (--this.refs === 0) this.closeFd(this.fd);
  }
}

function closeCounted(fd: number): void {
  openCount--;
  close(fd, () => {});
}

/**
 * An OpenFile over a descriptor someone else opened, held once by the caller; `closeFd` runs
 * when the last holder lets go (e.g. a FileHandle's close()). Not counted in openFileCount.
 */
export function adoptFile(fd: number, stats: Stats, closeFd: (fd: number) => void): OpenFile {
  return new SharedFile(fd, stats, closeFd);
}

/**
 * Opens `file` for reading and fstats the descriptor; the caller holds the one reference.
 * Anything but a regular file (a directory, a FIFO, a device) is refused with an EISDIR-like
 * error and closed again.
 */
export function openRegular(file: string): Promise<OpenFile> {
  return new Promise((resolve, reject) => {
    open(file, OPEN_FLAGS, (err, fd) => {
      if (err !== null) return reject(err);
      openCount++;
      fstat(fd, (err2, stats) => {
        if (err2 !== null || !stats.isFile()) {
          closeCounted(fd);
          const e: NodeJS.ErrnoException = err2 ?? new Error(`not a regular file: ${file}`);
          if (err2 === null) e.code = 'EISDIR';
          return reject(e);
        }
        resolve(new SharedFile(fd, stats, closeCounted));
      });
    });
  });
}
