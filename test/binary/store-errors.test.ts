// The store fails in its own kinds; MX/1 answers each with the code docs/protocol.md gives it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { STORE_ERROR_CODES, storeErrorCode } from '../../src/binary/store-errors.js';
import { StoreError } from '../../src/store/errors.js';
import { MAX_NAME_BYTES, checkUploadSize, validateFileName } from '../../src/store/names.js';
import { ErrorCode, MAX_FILE_NAME_BYTES } from '../../src/wire/protocol.js';

test('each store kind answers the MX/1 code it always did', () => {
  assert.deepEqual(STORE_ERROR_CODES, {
    'bad-name': 21,
    'not-found': 20,
    'too-large': 22,
    'digest-mismatch': 23,
    'no-space': 26,
    aborted: 4,
  });
  assert.equal(storeErrorCode(new StoreError('no-space', 'full')), ErrorCode.STORAGE_FULL);
});

test('the store\'s name limit is the one MX/1 documents', () => {
  assert.equal(MAX_NAME_BYTES, MAX_FILE_NAME_BYTES);
  assert.equal(validateFileName('x'.repeat(MAX_FILE_NAME_BYTES)).length, MAX_FILE_NAME_BYTES);
  assert.throws(() => validateFileName('x'.repeat(MAX_FILE_NAME_BYTES + 1)), (e: unknown) => e instanceof StoreError && e.code === 'bad-name' && e.message === `bad file name: ${MAX_FILE_NAME_BYTES + 1} bytes, at most ${MAX_FILE_NAME_BYTES}`);
});

test('checkUploadSize: the limit is inclusive; over it is too-large with the sizes in the text', () => {
  assert.doesNotThrow(() => checkUploadSize(10, 10));
  assert.throws(() => checkUploadSize(11, 10), (e: unknown) => e instanceof StoreError && e.code === 'too-large' && e.name === 'StoreError' && e.message === '11 bytes exceeds the upload limit of 10');
});
