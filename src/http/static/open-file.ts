// Files opened once per response (or per burst of responses sharing a load): the head is
// built from the descriptor's own fstat and the body is read from the same descriptor. The
// descriptor type and its opener are the server's one OpenFile (src/loop/open-file.ts); this
// module keeps the static site's view of it.
import type { Stats } from 'node:fs';
import { openRegular as openFile, type OpenFile } from '../../loop/open-file.js';

export { openFileCount } from '../../loop/open-file.js';

/** An opened regular file, held once by the caller, with the fstat of that descriptor. */
export interface Opened {
  file: OpenFile;
  stats: Stats;
}

/**
 * Opens `file` for reading and fstats the descriptor. Anything but a regular file (a
 * directory, a FIFO, a device) is refused with an EISDIR-like error and closed again.
 */
export async function openRegular(file: string): Promise<Opened> {
  const opened = await openFile(file);
  return { file: opened, stats: opened.stats };
}
