// `muxd compress DIR`: writes x.gz and x.br beside each compressible file so the server can
// send them without compressing per request (the nginx gzip_static idea).
import { readdir, readFile, writeFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { brotliCompress, gzip, constants } from 'node:zlib';
import { isCompressible } from './mime.js';

const gzipAsync = promisify(gzip);
const brotliAsync = promisify(brotliCompress);

/** Below this, the Content-Encoding header costs about what compression saves. */
export const MIN_COMPRESS_BYTES = 1024;

/** Writes .gz and .br siblings for text files over 1 KiB under `dir`; returns the paths written. */
export async function precompressDir(dir: string): Promise<string[]> {
  const written: string[] = [];
  for (const file of await listFiles(dir)) {
    const base = path.basename(file);
    if (base.endsWith('.gz') || base.endsWith('.br') || !isCompressible(base)) continue;
    const info = await stat(file);
    if (info.size <= MIN_COMPRESS_BYTES) continue;
    const source = await readFile(file);
    const gz = await gzipAsync(source, { level: 9 });
    const br = await brotliAsync(source, {
      params: {
        [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
        [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY,
        [constants.BROTLI_PARAM_SIZE_HINT]: source.length,
      },
    });
    // A sibling that is not smaller is never worth sending.
    if (gz.length < source.length) {
      await writeFile(file + '.gz', gz);
      written.push(file + '.gz');
    }
    if (br.length < source.length) {
      await writeFile(file + '.br', br);
      written.push(file + '.br');
    }
  }
  return written;
}

/** Regular files under `dir`, recursively, skipping dotfiles and symlinks. */
async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.name.startsWith('.')) continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await listFiles(full)));
    else if (entry.isFile()) out.push(full);
  }
  return out.sort();
}
