// The store's pure rules, apart from its file-system code (files.ts) so that the sans-IO MX/1
// core (src/binary/core.ts) can check names and sizes without loading node:fs.
import { StoreError } from './errors.js';

export { StoreError };

/** Longest file name in UTF-8 bytes: NAME_MAX of the file systems we run on (MX/1 documents the same limit). */
export const MAX_NAME_BYTES = 255;

/**
 * Checks a client-supplied file name and returns its NFC form.
 * NFC so that a name typed on macOS (NFD) and one typed elsewhere name the same file.
 * Throws StoreError('bad-name').
 */
export function validateFileName(name: string): string {
  const nfc = name.normalize('NFC');
  const bytes = Buffer.byteLength(nfc, 'utf8');
  const bad = (why: string): never => {
    throw new StoreError('bad-name', `bad file name: ${why}`);
  };
  if (bytes === 0) bad('empty');
  if (bytes > MAX_NAME_BYTES) bad(`${bytes} bytes, at most ${MAX_NAME_BYTES}`);
  if (nfc.charCodeAt(0) === 0x2e) bad('must not start with "."');
  for (let k = 0; k < nfc.length; k++) {
    const c = nfc.charCodeAt(k);
    // C0 controls incl. NUL, DEL, C1 controls; path separators of every platform we run on.
    if (c < 0x20 || c === 0x7f || (c >= 0x80 && c <= 0x9f)) bad('control character');
    if (c === 0x2f || c === 0x5c) bad('"/" and "\\" are not allowed');
    // Lone surrogates cannot be written as UTF-8 file names.
    if (c >= 0xd800 && c <= 0xdfff) {
      const pair = c <= 0xdbff && k + 1 < nfc.length && (nfc.charCodeAt(k + 1) & 0xfc00) === 0xdc00;
      if (!pair) bad('lone surrogate');
      k++;
    }
  }
  return nfc;
}

/** Throws StoreError('too-large') when `size` is over `maxUpload`. */
export function checkUploadSize(size: number, maxUpload: number): void {
  if (size > maxUpload) throw new StoreError('too-large', `${size} bytes exceeds the upload limit of ${maxUpload}`);
}
