// The answer for one file, given its representations and the request's fields. Synchronous:
// the same code serves memory-cached bodies and streamed file regions.
import { randomBytes } from 'node:crypto';
import type { BodyPart, Reply } from '../types.js';
import { STATUS_TEXT, statusLine } from '../status.js';
import { evaluatePreconditions, ifRangeHolds, type Conditions } from './conditional.js';
import { chooseCoding, IDENTITY } from './encoding.js';
import { parseRange, type ByteRange } from './range.js';
import type { Resource, Variant } from './representation.js';

export function respond(res: Resource, c: Conditions, isHead: boolean): Reply {
  const v = res.variants[chooseCoding(c.acceptEncoding, res.available)]!;
  const outcome = evaluatePreconditions(c, v.etag, v.lastModifiedMs);
  const ready = v.body !== null ? (v.replies ??= readyReplies(v, v.body)) : null;
  if (outcome === 304) return ready?.notModified ?? { status: 304, head: v.head304, body: [], bodyLength: 0 };
  if (outcome === 412) return shortReply(412, v.validatorLines, isHead);
  // Range applies to GET only (RFC 9110 §14.2), to the chosen representation.
  if (c.range !== undefined && !isHead && ifRangeHolds(c.ifRange, v.etag, v.lastModified)) {
    const ranges = parseRange(c.range, v.size);
    if (ranges === 'unsatisfiable') {
      return shortReply(416, v.validatorLines + `Content-Range: bytes */${v.size}\r\n`, false);
    }
    if (ranges !== null && ranges.length === 1) return single(v, ranges[0]!);
    // A multipart body cannot say that its parts are ranges of a gzip/br representation: a
    // Content-Encoding on the 206 would claim the multipart itself is compressed. Range may be
    // ignored (RFC 9110 §14.2), so a compressed variant answers several ranges with 200.
    if (ranges !== null && v.coding === IDENTITY) return multipart(v, res.contentType, ranges);
  }
  if (ready !== null) return isHead ? ready.head : ready.get;
  return { status: 200, head: v.head200, body: isHead || v.size === 0 ? [] : [whole(v)], bodyLength: v.size };
}

function readyReplies(v: Variant, body: Buffer): NonNullable<Variant['replies']> {
  const head200 = Buffer.from(v.head200, 'latin1');
  return {
    get: { status: 200, head: v.head200, headBytes: head200, body: v.size === 0 ? [] : [body], bodyLength: v.size },
    head: { status: 200, head: v.head200, headBytes: head200, body: [], bodyLength: v.size },
    notModified: { status: 304, head: v.head304, headBytes: Buffer.from(v.head304, 'latin1'), body: [], bodyLength: 0 },
  };
}

function whole(v: Variant): BodyPart {
  return v.body ?? region(v, 0, v.size - 1);
}

function slice(v: Variant, r: ByteRange): BodyPart {
  // subarray is a view: no copy of the cached bytes.
  return v.body !== null ? v.body.subarray(r.start, r.end + 1) : region(v, r.start, r.end);
}

/** A region of the variant's open file; it holds its own reference, released once sent. */
function region(v: Variant, start: number, end: number): BodyPart {
  const file = v.file;
  if (file === null) throw new Error(`no open file for ${v.path}`);
  file.retain();
  return { file, start, end };
}

function single(v: Variant, r: ByteRange): Reply {
  const length = r.end - r.start + 1;
  const head =
    statusLine(206) + v.validatorLines + v.entityLines +
    `Content-Range: bytes ${r.start}-${r.end}/${v.size}\r\nContent-Length: ${length}\r\n`;
  return { status: 206, head, body: [slice(v, r)], bodyLength: length };
}

/** multipart/byteranges, RFC 9110 §14.6: each part carries its own Content-Type and Content-Range. */
function multipart(v: Variant, contentType: string, ranges: ByteRange[]): Reply {
  const boundary = 'muxd-' + randomBytes(12).toString('hex');
  const body: BodyPart[] = [];
  let length = 0;
  for (let i = 0; i < ranges.length; i++) {
    const r = ranges[i]!;
    const partHead = Buffer.from(
      `${i === 0 ? '' : '\r\n'}--${boundary}\r\nContent-Type: ${contentType}\r\nContent-Range: bytes ${r.start}-${r.end}/${v.size}\r\n\r\n`,
      'latin1',
    );
    body.push(partHead, slice(v, r));
    length += partHead.length + r.end - r.start + 1;
  }
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1');
  body.push(tail);
  length += tail.length;
  // The entity lines name the whole file's type; the parts carry it instead.
  const entity = v.entityLines.replace(/^Content-Type: [^\r]*\r\n/, '');
  const head =
    statusLine(206) + v.validatorLines + entity +
    `Content-Type: multipart/byteranges; boundary=${boundary}\r\nContent-Length: ${length}\r\n`;
  return { status: 206, head, body, bodyLength: length };
}

/** 412 / 416 with the resource's validators (and Vary) and a short text body. */
function shortReply(status: number, lines: string, isHead: boolean): Reply {
  const text = Buffer.from(`${status} ${STATUS_TEXT[status]}\n`, 'latin1');
  const head =
    statusLine(status) + lines +
    `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${text.length}\r\n`;
  return { status, head, body: isHead ? [] : [text], bodyLength: text.length };
}
