// The store's pure rules, apart from its file-system code (files.ts) so that the sans-IO MX/1
// core (src/binary/core.ts) can check names and answer store errors without loading node:fs.
import { ErrorCode, MAX_FILE_NAME_BYTES } from '../wire/protocol.js';

/** A store failure with the MX/1 error code to answer with. */
export class StoreError extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.name = 'StoreError';
    this.code = code;
  }
}

/**
 * Checks a client-supplied file name (MX/1 error 21 rules) and returns its NFC form.
 * NFC so that a name typed on macOS (NFD) and one typed elsewhere name the same file.
 * Throws StoreError(BAD_FILE_NAME).
 */
export function validateFileName(name: string): string {
  const nfc = name.normalize('NFC');
  const bytes = Buffer.byteLength(nfc, 'utf8');
  const bad = (why: string): never => {
    throw new StoreError(ErrorCode.BAD_FILE_NAME, `bad file name: ${why}`);
  };
  if (bytes === 0) bad('empty');
  if (bytes > MAX_FILE_NAME_BYTES) bad(`${bytes} bytes, at most ${MAX_FILE_NAME_BYTES}`);
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
