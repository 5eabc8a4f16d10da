// The one place a store failure becomes an MX/1 error code: the store speaks in kinds and knows
// no protocol (src/store/errors.ts). A Record, so a new kind does not compile until it is mapped.
import type { StoreError, StoreErrorKind } from '../store/errors.js';
import { ErrorCode, type ErrorCodeValue } from '../wire/protocol.js';

export const STORE_ERROR_CODES: Readonly<Record<StoreErrorKind, ErrorCodeValue>> = {
  'bad-name': ErrorCode.BAD_FILE_NAME,
  'not-found': ErrorCode.NOT_FOUND,
  'too-large': ErrorCode.FILE_TOO_LARGE,
  'digest-mismatch': ErrorCode.CHECKSUM_MISMATCH,
  'no-space': ErrorCode.STORAGE_FULL,
  // An aborted upload has had its answer already (or lost its connection): 4, as it always was.
  aborted: ErrorCode.MALFORMED,
};

/** The ERROR code a store failure is answered with. */
export function storeErrorCode(err: StoreError): ErrorCodeValue {
  return STORE_ERROR_CODES[err.code];
}
