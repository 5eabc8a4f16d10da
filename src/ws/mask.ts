// RFC 6455 §5.3 masking: byte i of the payload is XORed with byte (i mod 4) of the 4-byte key.
// Applying the mask twice gives the input back, so one function masks and unmasks.
//
// The loop works a 32-bit word at a time over the stretch where source and output are both
// 4-byte aligned (typed arrays may not be read at unaligned offsets), and a byte at a time before
// and after it. The key is turned into a word by viewing its bytes through the same kind of
// Uint32Array, so the result does not depend on the machine's byte order.

/** Below this many bytes a plain byte loop is cheaper than making the word views. */
const WORD_LOOP_MIN = 32;

/**
 * out[outOffset + i] = src[i] ^ key[i & 3] for i in [0, src.length). `out` may be `src` itself
 * (unmask in place, outOffset 0). `key` holds 4 bytes.
 */
export function applyMask(src: Uint8Array, key: Uint8Array, out: Uint8Array, outOffset: number): void {
  const n = src.length;
  const k0 = key[0]!;
  const k1 = key[1]!;
  const k2 = key[2]!;
  const k3 = key[3]!;
  let i = 0;
  const srcAddr = src.byteOffset;
  const outAddr = out.byteOffset + outOffset;
  if (n >= WORD_LOOP_MIN && (srcAddr & 3) === (outAddr & 3)) {
    // Bytes until both addresses sit on a word boundary.
    const lead = (4 - (srcAddr & 3)) & 3;
    for (; i < lead; i++) out[outOffset + i] = src[i]! ^ key[i & 3]!;
    const words = (n - lead) >>> 2;
    // The key rotated so that its first byte lines up with payload byte `lead`.
    const rotated = new Uint8Array(4);
    for (let j = 0; j < 4; j++) rotated[j] = key[(lead + j) & 3]!;
    const keyWord = new Uint32Array(rotated.buffer)[0]!;
    const s32 = new Uint32Array(src.buffer, srcAddr + lead, words);
    const o32 = new Uint32Array(out.buffer, outAddr + lead, words);
    for (let w = 0; w < words; w++) o32[w] = s32[w]! ^ keyWord;
    i = lead + words * 4;
  } else {
    // Unrolled by four where the alignments differ (or the payload is short).
    const end4 = n & ~3;
    for (; i < end4; i += 4) {
      out[outOffset + i] = src[i]! ^ k0;
      out[outOffset + i + 1] = src[i + 1]! ^ k1;
      out[outOffset + i + 2] = src[i + 2]! ^ k2;
      out[outOffset + i + 3] = src[i + 3]! ^ k3;
    }
  }
  for (; i < n; i++) out[outOffset + i] = src[i]! ^ key[i & 3]!;
}

/** Unmasks (or masks) `buf` in place. */
export function unmaskInPlace(buf: Uint8Array, key: Uint8Array): void {
  const n = buf.length;
  if (n >= WORD_LOOP_MIN) {
    applyMask(buf, key, buf, 0);
    return;
  }
  // Small payloads (most MX/1 requests): the plain loop, without the general function's setup.
  for (let i = 0; i < n; i++) buf[i] = buf[i]! ^ key[i & 3]!;
}
