// A file and its precompressed siblings as ready-made response heads. Everything that does
// not depend on the request (type, validators, cache class, Vary) is formatted once here, so
// answering a cached file costs a couple of string concatenations at most.
import { SERVER_HEADER, statusLine } from '../status.js';
import type { OpenFile, Reply } from '../types.js';
import { CODING_NAMES, IDENTITY, type AvailableMask } from './encoding.js';

/** One representation: the file itself (identity) or a sibling (br, gzip). */
export interface Variant {
  coding: number;
  /** Real path on disk (symlinks resolved and checked). */
  path: string;
  /**
   * The descriptor whose fstat built this head, for a variant streamed from disk (null when
   * the bytes are in memory). The resource holds one reference until its load lets go.
   */
  file: OpenFile | null;
  size: number;
  mtimeMs: number;
  /** Strong tag from size and mtime, distinct per coding: "\"1f4-18c2a3b4c5d-br\"". */
  etag: string;
  lastModified: string;
  /** Last-Modified as ms, whole seconds (what clients echo back). */
  lastModifiedMs: number;
  /** Header lines shared by 200/206/304/412/416: validators, Cache-Control, Vary. */
  validatorLines: string;
  /** Content-Type, Content-Encoding, nosniff, Accept-Ranges (not on 304). */
  entityLines: string;
  /** The complete 200 head, Content-Length included. */
  head200: string;
  /** The complete 304 head (RFC 9110 §15.4.5: no Content-Length, validators kept). */
  head304: string;
  /** The bytes, when the file is small enough to keep in memory. */
  body: Buffer | null;
  /**
   * Ready-made replies for the common answers to a memory-cached variant (GET 200, HEAD 200,
   * 304), built on first use and reused for every request: the connection never mutates a Reply.
   */
  replies: { get: Reply; head: Reply; notModified: Reply } | null;
}

export interface Resource {
  contentType: string;
  /** Indexed by coding; identity always present. */
  variants: (Variant | undefined)[];
  available: AvailableMask;
}

export interface VariantStat {
  coding: number;
  path: string;
  file?: OpenFile | null;
  size: number;
  mtimeMs: number;
}

/**
 * `extraLines`: complete header lines every answer about this resource carries (the download
 * headers of an upload mount), precomputed here like the rest.
 */
export function buildResource(stats: VariantStat[], contentType: string, cacheControl: string, extraLines = ''): Resource {
  let available = 0;
  for (const s of stats) if (s.coding !== IDENTITY) available |= 1 << s.coding;
  // Caches must key on Accept-Encoding whenever the choice depends on it, for every
  // response about this resource, identity included (RFC 9110 §12.5.5).
  const vary = available !== 0 ? 'Vary: Accept-Encoding\r\n' : '';
  const variants: (Variant | undefined)[] = [];
  for (const s of stats) {
    const tag = `"${s.size.toString(16)}-${Math.floor(s.mtimeMs).toString(16)}${s.coding === IDENTITY ? '' : '-' + CODING_NAMES[s.coding]}"`;
    const lastModifiedMs = Math.floor(s.mtimeMs / 1000) * 1000;
    const lastModified = new Date(lastModifiedMs).toUTCString();
    const validatorLines =
      SERVER_HEADER + `ETag: ${tag}\r\nLast-Modified: ${lastModified}\r\nCache-Control: ${cacheControl}\r\n` + vary + extraLines;
    const entityLines =
      `Content-Type: ${contentType}\r\n` +
      (s.coding === IDENTITY ? '' : `Content-Encoding: ${CODING_NAMES[s.coding]}\r\n`) +
      (extraLines.includes('X-Content-Type-Options') ? '' : 'X-Content-Type-Options: nosniff\r\n') +
      'Accept-Ranges: bytes\r\n';
    variants[s.coding] = {
      coding: s.coding,
      path: s.path,
      file: s.file ?? null,
      size: s.size,
      mtimeMs: s.mtimeMs,
      etag: tag,
      lastModified,
      lastModifiedMs,
      validatorLines,
      entityLines,
      head200: statusLine(200) + validatorLines + entityLines + `Content-Length: ${s.size}\r\n`,
      head304: statusLine(304) + validatorLines,
      body: null,
      replies: null,
    };
  }
  return { contentType, variants, available };
}

/** Lets go of the descriptors a streamed resource holds (its load's own references). */
export function releaseResource(res: Resource): void {
  for (const v of res.variants) {
    if (v?.file != null) {
      v.file.release();
      v.file = null;
    }
  }
}
