// Python-struct-style binary layouts, compiled once: `struct('!HBBII').pack(...)`.
// Byte order prefix: '!' or '>' big-endian (network order), '<' little-endian; default big-endian
// because MX/1 is big-endian throughout. Codes: B H I Q (unsigned 8/16/32/64, Q as bigint),
// b h i q (signed), Ns (N raw bytes), x (one pad byte, no value). A decimal count repeats a code
// (`3B` = `BBB`, `2x` = two pad bytes); for `s` it is the byte length instead.

export type StructValue = number | bigint | Buffer;

export interface Struct {
  readonly format: string;
  readonly size: number;
  pack(...values: StructValue[]): Buffer;
  packInto(target: Buffer, offset: number, ...values: StructValue[]): void;
  unpack(source: Buffer, offset?: number): StructValue[];
}

type Kind = 'B' | 'H' | 'I' | 'Q' | 'b' | 'h' | 'i' | 'q' | 's' | 'x';

interface Field {
  kind: Kind;
  /** Byte offset within the struct. */
  at: number;
  /** Byte width (for 's' the string length). */
  width: number;
}

const WIDTH: Record<Exclude<Kind, 's'>, number> = { B: 1, H: 2, I: 4, Q: 8, b: 1, h: 2, i: 4, q: 8, x: 1 };

/** Integer ranges, checked on pack so a bad value fails loudly instead of wrapping. */
const RANGE: Record<'B' | 'H' | 'I' | 'b' | 'h' | 'i', [number, number]> = {
  B: [0, 0xff],
  H: [0, 0xffff],
  I: [0, 0xffffffff],
  b: [-0x80, 0x7f],
  h: [-0x8000, 0x7fff],
  i: [-0x80000000, 0x7fffffff],
};
const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;

function compile(format: string): { little: boolean; fields: Field[]; size: number } {
  let pos = 0;
  let little = false;
  const first = format[0];
  if (first === '!' || first === '>') pos = 1;
  else if (first === '<') {
    little = true;
    pos = 1;
  }
  const fields: Field[] = [];
  let size = 0;
  while (pos < format.length) {
    let ch = format[pos];
    if (ch === ' ') {
      pos++;
      continue;
    }
    let count = -1;
    if (ch >= '0' && ch <= '9') {
      count = 0;
      while (pos < format.length && format[pos] >= '0' && format[pos] <= '9') {
        count = count * 10 + (format.charCodeAt(pos) - 48);
        pos++;
      }
      if (pos >= format.length) throw new TypeError(`struct: count without a code in ${JSON.stringify(format)}`);
      ch = format[pos];
    }
    pos++;
    if (ch === 's') {
      const width = count < 0 ? 1 : count;
      fields.push({ kind: 's', at: size, width });
      size += width;
      continue;
    }
    if (!(ch in WIDTH)) throw new TypeError(`struct: unknown code ${JSON.stringify(ch)} in ${JSON.stringify(format)}`);
    const kind = ch as Exclude<Kind, 's'>;
    const width = WIDTH[kind];
    const n = count < 0 ? 1 : count;
    for (let k = 0; k < n; k++) {
      fields.push({ kind, at: size, width });
      size += width;
    }
  }
  return { little, fields, size };
}

function writeField(target: Buffer, base: number, f: Field, little: boolean, value: StructValue | undefined): void {
  const at = base + f.at;
  switch (f.kind) {
    case 'x':
      target[at] = 0;
      return;
    case 's': {
      if (!Buffer.isBuffer(value)) throw new TypeError('struct: s expects a Buffer');
      // Python semantics: truncate or zero-pad to the declared width.
      const n = value.copy(target, at, 0, Math.min(value.length, f.width));
      if (n < f.width) target.fill(0, at + n, at + f.width);
      return;
    }
    case 'Q':
    case 'q': {
      const v = typeof value === 'number' && Number.isInteger(value) ? BigInt(value) : value;
      if (typeof v !== 'bigint') throw new TypeError(`struct: ${f.kind} expects a bigint or integer`);
      if (f.kind === 'Q') {
        if (v < 0n || v > U64_MAX) throw new RangeError(`struct: ${v} out of range for Q`);
        if (little) target.writeBigUInt64LE(v, at);
        else target.writeBigUInt64BE(v, at);
      } else {
        if (v < I64_MIN || v > I64_MAX) throw new RangeError(`struct: ${v} out of range for q`);
        if (little) target.writeBigInt64LE(v, at);
        else target.writeBigInt64BE(v, at);
      }
      return;
    }
    default: {
      if (typeof value !== 'number' || !Number.isInteger(value)) throw new TypeError(`struct: ${f.kind} expects an integer`);
      const [lo, hi] = RANGE[f.kind];
      if (value < lo || value > hi) throw new RangeError(`struct: ${value} out of range for ${f.kind}`);
      switch (f.kind) {
        case 'B':
          target[at] = value;
          return;
        case 'b':
          target.writeInt8(value, at);
          return;
        case 'H':
          if (little) target.writeUInt16LE(value, at);
          else target.writeUInt16BE(value, at);
          return;
        case 'h':
          if (little) target.writeInt16LE(value, at);
          else target.writeInt16BE(value, at);
          return;
        case 'I':
          if (little) target.writeUInt32LE(value, at);
          else target.writeUInt32BE(value, at);
          return;
        case 'i':
          if (little) target.writeInt32LE(value, at);
          else target.writeInt32BE(value, at);
          return;
      }
    }
  }
}

function readField(source: Buffer, base: number, f: Field, little: boolean): StructValue {
  const at = base + f.at;
  switch (f.kind) {
    case 'B':
      return source[at];
    case 'b':
      return source.readInt8(at);
    case 'H':
      return little ? source.readUInt16LE(at) : source.readUInt16BE(at);
    case 'h':
      return little ? source.readInt16LE(at) : source.readInt16BE(at);
    case 'I':
      return little ? source.readUInt32LE(at) : source.readUInt32BE(at);
    case 'i':
      return little ? source.readInt32LE(at) : source.readInt32BE(at);
    case 'Q':
      return little ? source.readBigUInt64LE(at) : source.readBigUInt64BE(at);
    case 'q':
      return little ? source.readBigInt64LE(at) : source.readBigInt64BE(at);
    case 's':
      // A view, not a copy: callers that keep it beyond the source's life copy it themselves.
      return source.subarray(at, at + f.width);
    case 'x':
      throw new Error('unreachable: pad bytes carry no value');
  }
}

class CompiledStruct implements Struct {
  readonly format: string;
  readonly size: number;
  private readonly little: boolean;
  private readonly fields: Field[];
  /** Fields that carry a value (everything but pad bytes), in order. */
  private readonly valued: Field[];

  constructor(format: string) {
    const c = compile(format);
    this.format = format;
    this.size = c.size;
    this.little = c.little;
    this.fields = c.fields;
    this.valued = c.fields.filter((f) => f.kind !== 'x');
  }

  pack(...values: StructValue[]): Buffer {
    const out = Buffer.allocUnsafe(this.size);
    this.packInto(out, 0, ...values);
    return out;
  }

  packInto(target: Buffer, offset: number, ...values: StructValue[]): void {
    if (values.length !== this.valued.length) {
      throw new TypeError(`struct ${this.format}: expected ${this.valued.length} values, got ${values.length}`);
    }
    if (offset < 0 || offset + this.size > target.length) {
      throw new RangeError(`struct ${this.format}: needs ${this.size} bytes at offset ${offset}, target has ${target.length}`);
    }
    let v = 0;
    for (const f of this.fields) {
      writeField(target, offset, f, this.little, f.kind === 'x' ? undefined : values[v++]);
    }
  }

  unpack(source: Buffer, offset = 0): StructValue[] {
    if (offset < 0 || offset + this.size > source.length) {
      throw new RangeError(`struct ${this.format}: needs ${this.size} bytes at offset ${offset}, source has ${source.length}`);
    }
    const out: StructValue[] = new Array(this.valued.length);
    for (let k = 0; k < this.valued.length; k++) out[k] = readField(source, offset, this.valued[k], this.little);
    return out;
  }
}

export function struct(format: string): Struct {
  return new CompiledStruct(format);
}
