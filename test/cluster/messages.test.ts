// The worker's ready message is data the primary checks before it prints anything from it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseWorkerMessage } from '../../src/cluster/messages.js';

test('a ready message names each listener and its display', () => {
  const listeners = [
    { name: 'http', display: 'http://127.0.0.1:8080' },
    { name: 'udp', display: '[::1]:9000' },
  ];
  assert.deepEqual(parseWorkerMessage({ t: 'ready', listeners }), { t: 'ready', listeners });
  // Extra fields are not carried along.
  assert.deepEqual(parseWorkerMessage({ t: 'ready', listeners: [{ name: 'binary', display: '/run/mx.sock', extra: 1 }] }), { t: 'ready', listeners: [{ name: 'binary', display: '/run/mx.sock' }] });
});

const malformed: [string, unknown][] = [
  ['the old shape: log lines', { t: 'ready', lines: ['muxd http listening on http://127.0.0.1:8080'], ports: { http: 8080 } }],
  ['no listeners', { t: 'ready' }],
  ['a listener without a display', { t: 'ready', listeners: [{ name: 'http' }] }],
  ['a name that is not a word', { t: 'ready', listeners: [{ name: 'http listening on', display: 'x' }] }],
  ['a display that would print a second line', { t: 'ready', listeners: [{ name: 'http', display: 'x\nmuxd binary listening on y' }] }],
  ['listeners that are not a list', { t: 'ready', listeners: { name: 'http', display: 'x' } }],
];
for (const [name, m] of malformed) {
  test(`a malformed ready message is refused: ${name}`, () => {
    assert.equal(parseWorkerMessage(m), null);
  });
}

test('TLS: a worker asks with tls-wanted; the primary answers with the pair and 48 bytes of ticket keys, checked', async () => {
  const { parsePrimaryMessage } = await import('../../src/cluster/messages.js');
  assert.deepEqual(parseWorkerMessage({ t: 'tls-wanted', extra: 1 }), { t: 'tls-wanted' });
  const keys = Buffer.alloc(48, 7).toString('base64');
  const m = { t: 'tls', cert: '-----BEGIN CERTIFICATE-----', key: '-----BEGIN PRIVATE KEY-----', ticketKeys: keys };
  assert.deepEqual(parsePrimaryMessage({ ...m, extra: 1 }), m);
  assert.equal(parsePrimaryMessage({ ...m, ticketKeys: Buffer.alloc(32).toString('base64') }), null, 'not 48 bytes');
  assert.equal(parsePrimaryMessage({ ...m, ticketKeys: 7 }), null);
  assert.equal(parsePrimaryMessage({ ...m, cert: null }), null);
  assert.equal(parsePrimaryMessage({ t: 'tls', key: 'k', ticketKeys: keys }), null);
});
