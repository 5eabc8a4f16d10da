// Picks the request parser a server runs: ours, or llhttp as the reference.
import { createLlhttpParser } from './llhttp-parser.js';
import { createMuxdParser } from './parser.js';
import type { ParserFactory } from './types.js';

export function parserFactory(kind: 'muxd' | 'llhttp'): ParserFactory {
  return kind === 'llhttp' ? createLlhttpParser : createMuxdParser;
}
