// Builds WebSocket frames byte by byte for the test vectors, on purpose without the codec's own
// encoder (a bug shared by encoder and receiver would otherwise cancel out).

/** RFC 6455 §5.7's example masking key. */
export const KEY = [0x37, 0xfa, 0x21, 0x3d] as const;

export interface RawFrame {
  opcode: number;
  fin?: boolean;
  /** The three RSV bits as a number 0-7 (RSV1 = 4). */
  rsv?: number;
  payload?: Buffer | string;
  /** The masking key; null for an unmasked frame. Default KEY. */
  mask?: readonly number[] | null;
  /** Force the 16- or 64-bit length form even when the length is short (non-minimal encodings). */
  lengthForm?: 7 | 16 | 64;
  /** Declare this length instead of the payload's own (a lie, or a huge length with no payload). */
  declared?: number | bigint;
}

export function frame(f: RawFrame): Buffer {
  const payload = typeof f.payload === 'string' ? Buffer.from(f.payload, 'utf8') : (f.payload ?? Buffer.alloc(0));
  const declared = BigInt(f.declared ?? payload.length);
  const mask = f.mask === undefined ? KEY : f.mask;
  const form = f.lengthForm ?? (declared < 126n ? 7 : declared < 65536n ? 16 : 64);
  const bytes: number[] = [((f.fin ?? true) ? 0x80 : 0) | ((f.rsv ?? 0) << 4) | f.opcode];
  const m = mask === null ? 0 : 0x80;
  if (form === 7) bytes.push(m | Number(declared));
  else if (form === 16) bytes.push(m | 126, Number(declared >> 8n) & 0xff, Number(declared) & 0xff);
  else {
    bytes.push(m | 127);
    for (let s = 56n; s >= 0n; s -= 8n) bytes.push(Number((declared >> s) & 0xffn));
  }
  if (mask !== null) bytes.push(...mask);
  const body = Buffer.from(payload);
  if (mask !== null) for (let i = 0; i < body.length; i++) body[i] = body[i]! ^ mask[i & 3]!;
  return Buffer.concat([Buffer.from(bytes), body]);
}

export function hex(s: string): Buffer {
  return Buffer.from(s.replace(/\s+/g, ''), 'hex');
}

/** A close payload: u16 code + reason bytes. */
export function closeBody(code: number, reason: Buffer | string = ''): Buffer {
  const r = typeof reason === 'string' ? Buffer.from(reason, 'utf8') : reason;
  const out = Buffer.alloc(2 + r.length);
  out.writeUInt16BE(code, 0);
  r.copy(out, 2);
  return out;
}

/** Deterministic bytes (no two vectors share a pattern by accident). */
export function pattern(n: number, seed = 1): Buffer {
  const out = Buffer.alloc(n);
  let x = seed * 2654435761 >>> 0;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}
