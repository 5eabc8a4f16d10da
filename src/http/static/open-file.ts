// Files opened once per response (or per burst of responses sharing a load): the head is
// built from the descriptor's own fstat and the body is read from the same descriptor, so a
// file renamed over the name mid-response cannot tear it (Go's ServeContent, nginx's
// open_file_cache keep a response and its file one inode the same way).
import { close, constants, fstat, open, type Stats } from 'node:fs';
import type { OpenFile } from '../types.js';

/**
 * O_NOFOLLOW: the path was resolved and checked already, so a symlink here means it was swapped
 * since (refuse, ELOOP). O_NONBLOCK: opening a FIFO swapped in must not block a pool thread;
 * it has no effect on regular files.
 */
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);

let openCount = 0;

/** Descriptors opened here and not yet closed (for tests and stats: a leak shows here). */
export function openFileCount(): number {
  return openCount;
}

class SharedFile implements OpenFile {
  private refs = 1;

  constructor(readonly fd: number) {
    openCount++;
  }

  retain(): void {
    if (this.refs <= 0) throw new Error('retain of a closed file');
    this.refs++;
  }

  release(): void {
    if (this.refs <= 0) return;
    if (--this.refs === 0) {
      openCount--;
      close(this.fd, () => {});
    }
  }
}

/** An opened regular file, held once by the caller, with the fstat of that descriptor. */
export interface Opened {
  file: OpenFile;
  stats: Stats;
}

/**
 * Opens `file` for reading and fstats the descriptor. Anything but a regular file (a
 * directory, a FIFO, a device) is refused with an EISDIR-like error and closed again.
 */
export function openRegular(file: string): Promise<Opened> {
  return new Promise((resolve, reject) => {
    open(file, OPEN_FLAGS, (err, fd) => {
      if (err !== null) return reject(err);
      const shared = new SharedFile(fd);
      fstat(fd, (err2, stats) => {
        if (err2 !== null || !stats.isFile()) {
          shared.release();
          const e: NodeJS.ErrnoException = err2 ?? new Error(`not a regular file: ${file}`);
          if (err2 === null) e.code = 'EISDIR';
          return reject(e);
        }
        resolve({ file: shared, stats });
      });
    });
  });
}
