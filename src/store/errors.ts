// How the store fails, in its own words: a kind per failure a caller answers differently. The
// store knows no protocol; the MX/1 face maps each kind to its error code
// (src/binary/store-errors.ts). Any other error from the store (EIO, EACCES, ...) is not a
// StoreError and stays an internal error.
import { CodedError } from '../loop/coded-error.js';

export type StoreErrorKind =
  /** The name breaks the store's name rules (validateFileName). */
  | 'bad-name'
  /** No regular file of that name (absent, a directory, a symlink). */
  | 'not-found'
  /** The upload is larger than the store accepts. */
  | 'too-large'
  /** The uploaded bytes do not hash to the digest announced: nothing was kept. */
  | 'digest-mismatch'
  /** The volume is full (ENOSPC, EDQUOT): nothing partial was kept. */
  | 'no-space'
  /** The upload was dropped before its commit finished: nothing was kept. */
  | 'aborted';

export class StoreError extends CodedError<StoreErrorKind> {}
