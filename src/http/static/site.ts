// The static-site handler: GET/HEAD from a root directory (plus mounted directories such as
// the MX/1 uploads at /files/). A cache hit is a Map lookup keyed by the raw target path and a
// synchronous return of a prepared reply; everything else (path checks, stat, realpath,
// reading) happens on the async slow path, which fills the cache for next time.
import { read } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Handler, Reply, RequestHead } from '../types.js';
import { SERVER_HEADER, errorReply, statusLine } from '../status.js';
import { FileCache } from './cache.js';
import { cacheControlFor, resolveCacheControl, type CacheControlOptions } from './cache-control.js';
import { collectConditions } from './conditional.js';
import { BR, GZIP, IDENTITY, SIBLING_SUFFIX } from './encoding.js';
import { renderListing } from './listing.js';
import { contentTypeFor } from './mime.js';
import { directoryLocation, isHidden, parseTarget } from './paths.js';
import { buildResource, releaseResource, type Resource, type VariantStat } from './representation.js';
import { openRegular } from './open-file.js';
import { downloadLines, DOWNLOAD_LISTING_LINES } from './download.js';
import { respond } from './respond.js';

export { precompressDir } from './precompress.js';

export interface StaticOptions {
  /** Served at "/". */
  root: string;
  /** e.g. { prefix: '/files/', dir: filesDir, download: true } for MX/1 uploads. */
  mounts?: MountOptions[];
  /** Files up to this size are served from memory (default 64 KiB). */
  cacheMaxFileBytes?: number;
  /** Most cached entries (default 1024). */
  cacheMaxEntries?: number;
  /** Most cached bytes in total (default 32 MiB). */
  cacheMaxBytes?: number;
  cacheControl?: CacheControlOptions;
}

export interface MountOptions {
  /** URL prefix, e.g. "/files/". */
  prefix: string;
  dir: string;
  /**
   * Files others uploaded: every answer is a download that can never run on the site's origin
   * (Content-Disposition: attachment, Content-Security-Policy: sandbox, nosniff).
   */
  download?: boolean;
}

const ALLOW_LINE = 'Allow: GET, HEAD, OPTIONS\r\n';
/** Methods we know but do not allow here: 405 (RFC 9110 §15.5.6); anything else is 501. */
const KNOWN_NOT_ALLOWED = new Set(['POST', 'PUT', 'DELETE', 'PATCH', 'CONNECT', 'TRACE']);
/** Cache key of root/404.html; no request target starts with NUL. */
const NOT_FOUND_KEY = '\u0000404';
const NOT_FOUND_PAGE_MAX = 64 * 1024;
/** Errors that mean "nothing servable here". */
const MISSING = new Set(['ENOENT', 'ENOTDIR', 'ELOOP', 'ENAMETOOLONG', 'EACCES', 'EPERM', 'EISDIR']);

/** A file to serve: where it really is, the path the request named (links unresolved), its name. */
interface FileRef {
  real: string;
  logical: string;
  name: string;
}

interface Base {
  dir: string;
  /** Decoded segments of the mount prefix ([] for the root). */
  prefix: string[];
  isMount: boolean;
  download: boolean;
  real: Promise<string> | null;
}

const OPTIONS_REPLY: Reply = { status: 204, head: statusLine(204) + SERVER_HEADER + ALLOW_LINE, body: [], bodyLength: 0 };

export class StaticSite implements Handler {
  private readonly root: Base;
  private readonly mounts: Base[];
  private readonly cache: FileCache;
  private readonly cacheMaxFileBytes: number;
  private readonly cacheControl: ReturnType<typeof resolveCacheControl>;
  private notFoundHead: { resource: Resource; head: string } | null = null;
  private readonly loading = new Map<string, Promise<{ resource: Resource; cached: boolean }>>();

  constructor(opts: StaticOptions) {
    this.root = { dir: path.resolve(opts.root), prefix: [], isMount: false, download: false, real: null };
    this.mounts = (opts.mounts ?? []).map((m) => ({
      dir: path.resolve(m.dir),
      prefix: m.prefix.split('/').filter((s) => s !== ''),
      isMount: true,
      download: m.download === true,
      real: null,
    }));
    // Longest prefix first, so "/files/big/" would win over "/files/".
    this.mounts.sort((a, b) => b.prefix.length - a.prefix.length);
    this.cacheMaxFileBytes = opts.cacheMaxFileBytes ?? 64 * 1024;
    this.cacheControl = resolveCacheControl(opts.cacheControl);
    this.cache = new FileCache({ maxEntries: opts.cacheMaxEntries ?? 1024, maxBytes: opts.cacheMaxBytes ?? 32 * 1024 * 1024 });
  }

  handle(head: RequestHead): Reply | Promise<Reply> {
    const method = head.method;
    if (method === 'GET' || method === 'HEAD') {
      const target = head.target;
      const q = target.indexOf('?');
      const key = q < 0 ? target : target.slice(0, q);
      const entry = this.cache.get(key);
      // The hot path: no stat, no promise.
      if (entry !== undefined) return respond(entry.resource, collectConditions(head.headers), method === 'HEAD');
      return this.lookup(head, key, method === 'HEAD');
    }
    // OPTIONS on a path or "*" (RFC 9110 §9.3.7).
    if (method === 'OPTIONS') return OPTIONS_REPLY;
    if (KNOWN_NOT_ALLOWED.has(method)) return errorReply(405, { extraHeaders: ALLOW_LINE });
    return errorReply(501);
  }

  /** Stops the watchers and drops the cache. */
  close(): void {
    this.cache.clear();
    this.notFoundHead = null;
  }

  /** Entries and bytes in the memory cache (for stats and tests). */
  cacheStats(): { entries: number; bytes: number } {
    return { entries: this.cache.size, bytes: this.cache.bytes };
  }

  private async lookup(head: RequestHead, key: string, isHead: boolean): Promise<Reply> {
    try {
      return await this.lookupOrThrow(head, key, isHead);
    } catch (err) {
      if (MISSING.has((err as NodeJS.ErrnoException).code ?? '')) return this.notFound(isHead);
      return errorReply(500, { headOnly: isHead });
    }
  }

  private async lookupOrThrow(head: RequestHead, key: string, isHead: boolean): Promise<Reply> {
    const parsed = parseTarget(head.target);
    if ('error' in parsed) return errorReply(400, { headOnly: isHead });
    const all = parsed.segments;
    const base = this.baseFor(all);
    const segments = all.slice(base.prefix.length);
    if (isHidden(segments, !base.isMount)) return this.notFound(isHead);

    const realBase = await this.realDir(base);
    const logical = path.join(realBase, ...segments);
    const real = await realpath(logical);
    if (!this.isInside(real, realBase, base.isMount)) return this.notFound(isHead);
    const info = await stat(real);

    if (info.isDirectory()) {
      // RFC 9110 §15.4.2; the Location is a path we build, never the target echoed back.
      if (!parsed.trailingSlash) return redirect(directoryLocation(all, parsed.query), isHead);
      const indexPath = path.join(real, 'index.html');
      try {
        const realIndex = await realpath(indexPath);
        if (!this.isInside(realIndex, realBase, base.isMount)) return this.notFound(isHead);
        const indexInfo = await stat(realIndex);
        const file = { real: realIndex, logical: path.join(logical, 'index.html'), name: 'index.html' };
        if (indexInfo.isFile()) return await this.serveFile(head, key, file, isHead, base);
      } catch (err) {
        if (!MISSING.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
      }
      if (base.isMount) return listingReply(await renderListing(real, directoryLocation(all, '')), isHead, base.download);
      return this.notFound(isHead);
    }
    if (!info.isFile() || parsed.trailingSlash) return this.notFound(isHead);
    const file = { real, logical, name: segments[segments.length - 1] ?? path.basename(real) };
    return this.serveFile(head, key, file, isHead, base);
  }

  private baseFor(segments: readonly string[]): Base {
    for (const m of this.mounts) {
      if (segments.length < m.prefix.length) continue;
      let match = true;
      for (let i = 0; i < m.prefix.length; i++) {
        if (segments[i] !== m.prefix[i]) {
          match = false;
          break;
        }
      }
      if (match) return m;
    }
    return this.root;
  }

  /** The base directory's real path, resolved once (a failure is retried next time). */
  private realDir(base: Base): Promise<string> {
    if (base.real === null) {
      const p = realpath(base.dir);
      base.real = p;
      p.catch(() => {
        if (base.real === p) base.real = null;
      });
    }
    return base.real;
  }

  /**
   * Symlinks may point anywhere; what they resolve to must stay under the base, and must not
   * be a hidden file reached through an innocent-looking link.
   */
  private isInside(real: string, realBase: string, isMount: boolean): boolean {
    if (real === realBase) return true;
    if (!real.startsWith(realBase) || real.charCodeAt(realBase.length) !== 0x2f /* / */) {
      // A root of "/" is its own separator.
      if (!(realBase === '/' && real.startsWith('/'))) return false;
    }
    const rel = real.slice(realBase === '/' ? 1 : realBase.length + 1).split(path.sep);
    return !isHidden(rel, !isMount);
  }

  /**
   * Precompressed x.br / x.gz next to the file are looked for only under the root: in a mount
   * such as /files/ every name is an independent upload, and "report.txt.gz" uploaded by one
   * client must never be served as another's report.txt.
   */
  private async serveFile(head: RequestHead, key: string, file: FileRef, isHead: boolean, base: Base): Promise<Reply> {
    // Concurrent misses for one key share a single load: a burst on a cold file reads it
    // once, and a burst on a large one shares one descriptor.
    let pending = this.loading.get(key);
    if (pending === undefined) {
      pending = this.loadResource(file, key, !base.isMount, base.download).finally(() => this.loading.delete(key));
      this.loading.set(key, pending);
      // The load's own references to a streamed resource's files. Every request that joined
      // it resumes in the microtasks that follow the load and takes its own reference (the
      // regions respond() builds) before any macrotask runs, so a setImmediate is after all of
      // them; a request arriving later starts a new load (the map entry is gone first).
      pending.then(
        (loaded) => {
          if (!loaded.cached) setImmediate(() => releaseResource(loaded.resource));
        },
        () => {},
      );
    }
    const loaded = await pending;
    return respond(loaded.resource, collectConditions(head.headers), isHead);
  }

  /**
   * Opens the file and its precompressed siblings and builds the heads from those descriptors'
   * fstat. Small ones are read whole through the same descriptors and cached under `key`
   * (null: do not cache), closed at once; larger ones keep their descriptors, and the bodies
   * stream from them (the resource holds one reference each: releaseResource).
   */
  private async loadResource(file: FileRef, key: string | null, siblings: boolean, download: boolean): Promise<{ resource: Resource; cached: boolean }> {
    const { real: realPath, name } = file;
    const opened: VariantStat[] = [];
    const absent: string[] = [];
    try {
      const main = await openRegular(realPath);
      opened.push({ coding: IDENTITY, path: realPath, file: main.file, size: main.stats.size, mtimeMs: main.stats.mtimeMs });
      if (siblings && !name.endsWith('.br') && !name.endsWith('.gz')) {
        for (const coding of [BR, GZIP]) {
          const p = realPath + SIBLING_SUFFIX[coding];
          try {
            // O_NOFOLLOW: a sibling that is a symlink (or anything but a plain file) is ignored.
            const s = await openRegular(p);
            opened.push({ coding, path: p, file: s.file, size: s.stats.size, mtimeMs: s.stats.mtimeMs });
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code === 'ENOENT') absent.push(p);
          }
        }
      }
      const contentType = contentTypeFor(name);
      const cacheControl = cacheControlFor(name, contentType, this.cacheControl);
      const extra = download ? downloadLines(name) : '';
      const limit = key === NOT_FOUND_KEY ? Math.max(this.cacheMaxFileBytes, NOT_FOUND_PAGE_MAX) : this.cacheMaxFileBytes;
      if (key !== null && opened.every((s) => s.size <= limit)) {
        // The cached bytes are read through the descriptors whose fstat built the heads.
        const bodies: Buffer[] = [];
        for (const s of opened) {
          const body = await readExact(s.file!.fd, s.size);
          if (body === null) break; // shrank under us: stream it (and the stream will notice)
          bodies.push(body);
        }
        if (bodies.length === opened.length) {
          const stats = opened.map((s) => ({ coding: s.coding, path: s.path, size: s.size, mtimeMs: s.mtimeMs }));
          const resource = buildResource(stats, contentType, cacheControl, extra);
          for (let i = 0; i < stats.length; i++) resource.variants[stats[i]!.coding]!.body = bodies[i]!;
          this.cache.set(key, resource, absent, file.logical);
          return { resource, cached: true };
        }
      }
      const resource = buildResource(opened, contentType, cacheControl, extra);
      opened.length = 0; // the descriptors now belong to the resource
      return { resource, cached: false };
    } finally {
      for (const s of opened) s.file!.release();
    }
  }

  /** 404 with root/404.html when there is one (kept in the cache like any small file). */
  private async notFound(isHead: boolean): Promise<Reply> {
    let entry = this.cache.get(NOT_FOUND_KEY);
    if (entry === undefined) {
      try {
        const realRoot = await this.realDir(this.root);
        const logical = path.join(realRoot, '404.html');
        const real = await realpath(logical);
        if (!this.isInside(real, realRoot, false) || !(await stat(real)).isFile()) return errorReply(404, { headOnly: isHead });
        const loaded = await this.loadResource({ real, logical, name: '404.html' }, NOT_FOUND_KEY, true, false);
        if (!loaded.cached) releaseResource(loaded.resource);
      } catch {
        return errorReply(404, { headOnly: isHead });
      }
      entry = this.cache.get(NOT_FOUND_KEY);
      if (entry === undefined) return errorReply(404, { headOnly: isHead });
    }
    const page = entry.resource.variants[IDENTITY]!;
    if (this.notFoundHead?.resource !== entry.resource) {
      this.notFoundHead = {
        resource: entry.resource,
        head:
          statusLine(404) + SERVER_HEADER +
          `Content-Type: text/html; charset=utf-8\r\nCache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\nContent-Length: ${page.size}\r\n`,
      };
    }
    return { status: 404, head: this.notFoundHead.head, body: isHead || page.body === null ? [] : [page.body], bodyLength: page.size };
  }
}

/**
 * Reads exactly `size` bytes from the start of an open file: the bytes whose fstat gave
 * `size`. Null when the file ends sooner (truncated in place since).
 */
function readExact(fd: number, size: number): Promise<Buffer | null> {
  const body = Buffer.allocUnsafe(size);
  return new Promise((resolve, reject) => {
    const step = (at: number): void => {
      if (at === size) return resolve(body);
      read(fd, body, at, size - at, at, (err, n) => {
        if (err !== null) return reject(err);
        if (n === 0) return resolve(null);
        step(at + n);
      });
    };
    step(0);
  });
}

function redirect(location: string, isHead: boolean): Reply {
  const body = Buffer.from('301 Moved Permanently\n', 'latin1');
  return {
    status: 301,
    head:
      statusLine(301) + SERVER_HEADER +
      `Location: ${location}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\n`,
    body: isHead ? [] : [body],
    bodyLength: body.length,
  };
}

function listingReply(html: Buffer, isHead: boolean, download: boolean): Reply {
  return {
    status: 200,
    head:
      statusLine(200) + SERVER_HEADER +
      `Content-Type: text/html; charset=utf-8\r\nCache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n` +
      (download ? DOWNLOAD_LISTING_LINES : '') +
      `Content-Length: ${html.length}\r\n`,
    body: isHead ? [] : [html],
    bodyLength: html.length,
  };
}
