// Small files kept in memory with their response heads precomputed, keyed by the raw target
// path. Entries are dropped when a file changes: fs.watch (inotify) reports it within
// milliseconds; as a fallback (watch limits, network file systems) a hit re-stats the files
// asynchronously at most once per second. Bounded by entry count and total bytes (FIFO
// eviction: an insertion-ordered Map gives it for free, with no bookkeeping on hits).
import { watch, type FSWatcher } from 'node:fs';
import { lstat, realpath, stat } from 'node:fs/promises';
import type { Resource } from './representation.js';
import { IDENTITY } from './encoding.js';
import { coarseNow } from '../../loop/clock.js';

export interface CacheEntry {
  key: string;
  resource: Resource;
  bytes: number;
  /** Sibling paths that did not exist when cached: one appearing invalidates the entry. */
  absentSiblings: string[];
  /**
   * The path as the request named it, symlinks unresolved. Re-pointing a link (the usual
   * atomic deploy: `ln -sfn v2 current`) changes no file we watch, so revalidation checks
   * that it still resolves to the file we hold.
   */
  logicalPath: string | null;
  watchers: FSWatcher[];
  checkedAt: number;
  dropped: boolean;
}

export interface CacheLimits {
  maxEntries: number;
  maxBytes: number;
}

const REVALIDATE_MS = 1000;

export class FileCache {
  private readonly entries = new Map<string, CacheEntry>();
  private totalBytes = 0;

  constructor(private readonly limits: CacheLimits) {}

  get size(): number {
    return this.entries.size;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  /** The entry for `key`, scheduling a background revalidation when it is due. */
  get(key: string): CacheEntry | undefined {
    const e = this.entries.get(key);
    if (e === undefined) return undefined;
    const now = coarseNow();
    if (now - e.checkedAt >= REVALIDATE_MS) {
      e.checkedAt = now;
      void this.revalidate(e);
    }
    return e;
  }

  set(key: string, resource: Resource, absentSiblings: string[], logicalPath: string | null = null): CacheEntry | null {
    let bytes = 0;
    for (const v of resource.variants) if (v !== undefined) bytes += v.size;
    if (bytes > this.limits.maxBytes) return null;
    const old = this.entries.get(key);
    if (old !== undefined) this.drop(old);
    while (this.entries.size >= this.limits.maxEntries || this.totalBytes + bytes > this.limits.maxBytes) {
      const oldest = this.entries.values().next();
      if (oldest.done === true) break;
      this.drop(oldest.value);
    }
    const entry: CacheEntry = { key, resource, bytes, absentSiblings, logicalPath, watchers: [], checkedAt: coarseNow(), dropped: false };
    for (const v of resource.variants) {
      if (v === undefined) continue;
      try {
        const w = watch(v.path, { persistent: false }, () => this.drop(entry));
        w.on('error', () => this.drop(entry));
        entry.watchers.push(w);
      } catch {
        // Out of inotify watches, or a file system without them: the stat fallback covers it.
      }
    }
    this.entries.set(key, entry);
    this.totalBytes += bytes;
    return entry;
  }

  drop(entry: CacheEntry): void {
    if (entry.dropped) return;
    entry.dropped = true;
    for (const w of entry.watchers) w.close();
    entry.watchers.length = 0;
    if (this.entries.get(entry.key) === entry) {
      this.entries.delete(entry.key);
      this.totalBytes -= entry.bytes;
    }
  }

  clear(): void {
    for (const e of [...this.entries.values()]) this.drop(e);
  }

  private async revalidate(entry: CacheEntry): Promise<void> {
    try {
      if (entry.logicalPath !== null && (await realpath(entry.logicalPath)) !== entry.resource.variants[IDENTITY]?.path) {
        return this.drop(entry);
      }
      for (const v of entry.resource.variants) {
        if (v === undefined) continue;
        const s = await stat(v.path);
        if (s.size !== v.size || s.mtimeMs !== v.mtimeMs) return this.drop(entry);
      }
      for (const p of entry.absentSiblings) {
        const found = await lstat(p).then(
          () => true,
          () => false,
        );
        if (found) return this.drop(entry);
      }
    } catch {
      this.drop(entry);
    }
  }
}
