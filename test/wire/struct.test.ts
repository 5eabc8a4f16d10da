// struct(): Python-struct-style layouts, compiled once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { struct } from '../../src/wire/struct.js';

const cases: { name: string; format: string; size: number; values: (number | bigint | Buffer)[]; hex: string }[] = [
  { name: 'MX/1 header', format: '!HBBII', size: 12, values: [0x4d58, 1, 0x81, 7, 3], hex: '4d5801810000000700000003' },
  { name: 'big-endian >', format: '>HI', size: 6, values: [0x0102, 0x03040506], hex: '010203040506' },
  { name: 'little-endian <', format: '<HI', size: 6, values: [0x0102, 0x03040506], hex: '020106050403' },
  { name: 'default order is big-endian', format: 'H', size: 2, values: [0xabcd], hex: 'abcd' },
  { name: 'signed', format: '!bhi', size: 7, values: [-1, -2, -3], hex: 'fffffefffffffd' },
  { name: 'u64 as bigint', format: '!Q', size: 8, values: [0x0102030405060708n], hex: '0102030405060708' },
  { name: 'i64 negative', format: '<q', size: 8, values: [-2n], hex: 'feffffffffffffff' },
  { name: 'bytes and pad', format: '!3sxB', size: 5, values: [Buffer.from('abc'), 9], hex: '6162630009' },
  { name: 'repeat count', format: '!2H', size: 4, values: [1, 2], hex: '00010002' },
  { name: 'u32 max', format: '!I', size: 4, values: [0xffffffff], hex: 'ffffffff' },
];

for (const c of cases) {
  test(`struct ${c.name}: ${c.format}`, () => {
    const s = struct(c.format);
    assert.equal(s.format, c.format);
    assert.equal(s.size, c.size);
    const packed = s.pack(...c.values);
    assert.equal(packed.toString('hex'), c.hex);
    assert.deepEqual(s.unpack(packed), c.values);
    // packInto and unpack at an offset
    const target = Buffer.alloc(c.size + 3, 0xee);
    s.packInto(target, 2, ...c.values);
    assert.equal(target.subarray(2, 2 + c.size).toString('hex'), c.hex);
    assert.equal(target[0], 0xee);
    assert.equal(target[c.size + 2], 0xee);
    assert.deepEqual(s.unpack(target, 2), c.values);
  });
}

test('struct: Q accepts a safe integer number and returns a bigint', () => {
  const s = struct('!Q');
  assert.deepEqual(s.unpack(s.pack(5)), [5n]);
});

test('struct: s pads short buffers with zeros and truncates long ones', () => {
  const s = struct('4s');
  assert.equal(s.pack(Buffer.from('ab')).toString('hex'), '61620000');
  assert.equal(s.pack(Buffer.from('abcdef')).toString('hex'), '61626364');
});

test('struct: errors', () => {
  assert.throws(() => struct('!Z'), TypeError, 'unknown code');
  assert.throws(() => struct('!3'), TypeError, 'count without code');
  const h = struct('!HB');
  assert.throws(() => h.pack(1), TypeError, 'too few values');
  assert.throws(() => h.pack(1, 2, 3), TypeError, 'too many values');
  assert.throws(() => h.pack(0x10000, 1), RangeError, 'u16 overflow');
  assert.throws(() => h.pack(-1, 1), RangeError, 'negative unsigned');
  assert.throws(() => h.pack(1.5, 1), TypeError, 'non-integer');
  assert.throws(() => h.pack(1, 256), RangeError, 'u8 overflow');
  assert.throws(() => struct('!b').pack(128), RangeError);
  assert.throws(() => struct('!Q').pack(-1n), RangeError);
  assert.throws(() => struct('!Q').pack(1n << 64n), RangeError);
  assert.throws(() => struct('!q').pack(1n << 63n), RangeError);
  assert.throws(() => struct('!2s').pack(7), TypeError);
  assert.throws(() => h.unpack(Buffer.alloc(2)), RangeError, 'short source');
  assert.throws(() => h.unpack(Buffer.alloc(3), 1), RangeError, 'short at offset');
  assert.throws(() => h.packInto(Buffer.alloc(3), 1, 1, 1), RangeError, 'short target');
});
