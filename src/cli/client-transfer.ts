// `muxd put FILE [--as NAME] [--token T]` and `muxd get NAME [-o FILE] [--resume] [--force]`.
// get downloads into FILE.part, hashing as it writes (after hashing the prefix it resumes from),
// and renames into place only when the whole file's SHA-256 matches the server's.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, stat, truncate, unlink } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { boolFlag, stringFlag, UsageError, withClient, type CommandContext } from './client-context.js';
import { startProgress, type Progress } from './client-format.js';

export async function runPut(ctx: CommandContext): Promise<number> {
  const file = ctx.positionals[0]!;
  const name = stringFlag(ctx, 'as') ?? path.basename(file);
  const abs = path.resolve(ctx.io.cwd, file);
  // Servers started with --upload-token want AUTH before PUT; loopback servers without one do not.
  const token = stringFlag(ctx, 'token') ?? (ctx.io.env.MUXD_UPLOAD_TOKEN || undefined);
  await readableFile(abs, file);
  const { stdout, stderr } = ctx.io;
  let progress: Progress | null = null;
  const info = await withClient(ctx, async (client) => {
    try {
      return await client.put(name, abs, {
        token,
        onProgress(sent, total) {
          progress ??= startProgress(stderr, total, 0);
          progress.update(sent);
        },
      });
    } catch (err) {
      progress?.abort();
      throw err;
    }
  });
  // An empty file sends no DATA, so no progress callback ran.
  (progress ?? startProgress(stderr, info.size, 0)).finish('sent');
  stdout.write(`stored ${name}: ${info.size} bytes, sha256 ${info.sha256.toString('hex')}\n`);
  return 0;
}

export async function runGet(ctx: CommandContext): Promise<number> {
  const name = ctx.positionals[0]!;
  const outFlag = stringFlag(ctx, 'output');
  if (outFlag === undefined && !isPlainFileName(name)) {
    throw new UsageError(`"${name}" is not a plain local file name; choose where to save it with -o FILE`);
  }
  const target = path.resolve(ctx.io.cwd, outFlag ?? name);
  const part = target + '.part';
  if (!boolFlag(ctx, 'force') && (await exists(target))) {
    throw new Error(`${target} already exists; use --force to overwrite it`);
  }
  const { stdout, stderr } = ctx.io;

  // The digest covers the whole file, so a resumed download first hashes what it already has.
  const hash = createHash('sha256');
  let offset = 0;
  if (boolFlag(ctx, 'resume')) {
    offset = await hashExisting(part, hash);
    if (offset > 0) {
      await truncate(part, offset); // in case it grew while we hashed it
      stderr.write(`resuming ${path.basename(part)} from byte ${offset}\n`);
    }
  }
  const file = createWriteStream(part, { flags: offset > 0 ? 'a' : 'w' });
  // Open it before asking the server: a bad -o path is one line, not an unhandled stream error.
  await new Promise<void>((resolve, reject) => {
    file.once('open', () => resolve());
    file.once('error', (err: NodeJS.ErrnoException) =>
      reject(new Error(`cannot write ${part}: ${err.code === 'ENOENT' ? 'no such directory' : err.message}`)),
    );
  });
  const sink = hashingSink(file, hash);
  let progress: Progress | null = null;
  let info;
  try {
    info = await withClient(ctx, (client) =>
      client.get(name, sink, {
        offset,
        onStart(size) {
          progress = startProgress(stderr, size, offset);
        },
        onProgress(received) {
          progress?.update(received);
        },
      }),
    );
    sink.end();
    await finished(sink);
  } catch (err) {
    (progress as Progress | null)?.abort();
    sink.destroy();
    await finished(file).catch(() => {});
    if ((await sizeOf(part)) === 0) await unlink(part).catch(() => {});
    else stderr.write(`partial download kept in ${part}; rerun with --resume to continue\n`);
    throw err;
  }
  (progress as Progress | null)?.finish('received');
  const digest = hash.digest();
  if (!digest.equals(info.sha256)) {
    stderr.write(
      `muxd: checksum mismatch for "${name}": the downloaded file hashes to ${digest.toString('hex')} but the server says ` +
        `${info.sha256.toString('hex')}; kept ${part} (delete it, or retry without --resume)\n`,
    );
    return 1;
  }
  await rename(part, target);
  stdout.write(`saved ${target}: ${info.size} bytes, sha256 ${digest.toString('hex')}\n`);
  return 0;
}

/** A Writable that hashes every chunk and passes it on to `file`, honouring the file's backpressure. */
function hashingSink(file: Writable, hash: Hash): Writable {
  const sink = new Writable({
    // DATA frames are up to 64 KiB; a 1 MiB window avoids pausing the socket after every frame.
    highWaterMark: 1024 * 1024,
    write(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      if (file.write(chunk)) done();
      else file.once('drain', () => done());
    },
    final(done) {
      file.end();
      finished(file).then(() => done(), done);
    },
    destroy(err, done) {
      file.destroy();
      done(err);
    },
  });
  file.on('error', (err) => sink.destroy(err));
  return sink;
}

/** Hashes an existing partial file; returns its length (0 when it does not exist). */
async function hashExisting(file: string, hash: Hash): Promise<number> {
  if (!(await exists(file))) return 0;
  let bytes = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 256 * 1024 })) {
    const buf = chunk as Buffer;
    hash.update(buf);
    bytes += buf.length;
  }
  return bytes;
}

async function readableFile(abs: string, shown: string): Promise<void> {
  let st;
  try {
    st = await stat(abs);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(code === 'ENOENT' ? `cannot read ${shown}: no such file` : `cannot read ${shown}: ${(err as Error).message}`);
  }
  if (!st.isFile()) throw new Error(`cannot upload ${shown}: not a regular file`);
}

function isPlainFileName(name: string): boolean {
  return name !== '' && !name.startsWith('.') && !name.includes('/') && !name.includes('\\') && !name.includes('\0');
}

async function exists(file: string): Promise<boolean> {
  return (await sizeOf(file)) !== -1;
}

/** The file's size, or -1 when it does not exist. */
async function sizeOf(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch {
    return -1;
  }
}
