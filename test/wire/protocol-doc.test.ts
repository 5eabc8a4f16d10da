// docs/protocol.md is the contract a client author reads: every error code in src/wire/protocol.ts
// has a row in its §4 table, and every frame type a row in §3 (requests, replies, pushes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ErrorCode, Type } from '../../src/wire/protocol.js';

// Tests run from dist/test/wire: the repository root is three levels up.
const doc = readFileSync(fileURLToPath(new URL('../../../docs/protocol.md', import.meta.url)), 'utf8');

function section(title: string): string {
  const start = doc.indexOf(`\n## ${title}`);
  assert.ok(start >= 0, `section ${title}`);
  const end = doc.indexOf('\n## ', start + 1);
  return doc.slice(start, end < 0 ? undefined : end);
}

test('docs §4 has a table row for every error code', () => {
  const errors = section('4. Errors');
  const rows = new Set([...errors.matchAll(/^\|\s*(\d+)\s*\|/gm)].map((m) => Number(m[1])));
  for (const [name, code] of Object.entries(ErrorCode)) assert.ok(rows.has(code), `§4 has no row for ${code} (${name})`);
});

test('docs §3 has a table row for every frame type', () => {
  const frames = section('3. Requests and replies');
  const hex = new Set([...frames.matchAll(/0x([0-9A-Fa-f]{2})/g)].map((m) => parseInt(m[1]!, 16)));
  for (const [name, type] of Object.entries(Type)) {
    if (type === Type.ERROR) continue; // §4
    assert.ok(hex.has(type), `§3 does not mention 0x${type.toString(16)} (${name})`);
  }
});
