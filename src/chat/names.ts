// Chat name rules (docs/protocol.md "Names"): NFC, 1..32 characters that are Unicode letters,
// decimal digits, combining marks (needed by scripts like Devanagari; never first), '_', '-', '.';
// unique case-insensitively; "server" and "admin" reserved.
import { MAX_CHAT_NAME_CHARS, RESERVED_NAMES } from '../wire/protocol.js';

// JOIN is rare next to SAY, so a Unicode-property regex here costs nothing on the hot path.
const NAME_CHARS = /^[\p{L}\p{Nd}_.\-][\p{L}\p{M}\p{Nd}_.\-]*$/u;

/**
 * Comparison key (protocol.md §5): NFC, lower, upper, lower, NFC, with full (not locale) case
 * mappings. Lowering first makes "ẞ" (U+1E9E, whose uppercase is itself) "ß", which upper-
 * cases to "SS": so ß, ẞ, SS and ss collide, as do σ/ς/Σ and ǅ/Ǆ/ǆ. Python's
 * normalize('NFC', normalize('NFC', s).lower().upper().lower()) gives the same key.
 */
export function foldName(name: string): string {
  return name.normalize('NFC').toLowerCase().toUpperCase().toLowerCase().normalize('NFC');
}

const RESERVED = new Set(RESERVED_NAMES.map(foldName));

/** Returns the NFC name, or throws a message for error 10. */
export function validateChatName(raw: string): string {
  const name = raw.normalize('NFC');
  let chars = 0;
  for (const _ of name) chars++;
  if (chars === 0) throw new Error('name must not be empty');
  if (chars > MAX_CHAT_NAME_CHARS) throw new Error(`name is ${chars} characters, at most ${MAX_CHAT_NAME_CHARS}`);
  if (!NAME_CHARS.test(name)) throw new Error('name may contain only letters, digits, "_", "-" and "."');
  if (RESERVED.has(foldName(name))) throw new Error(`"${name}" is reserved`);
  return name;
}
