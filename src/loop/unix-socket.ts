// A Unix socket path before listen: a stale socket file (its server was killed) is removed; a
// live one, or anything that is not a socket, is the operator's mistake, never removed.
import { lstat, unlink } from 'node:fs/promises';
import net from 'node:net';

/** How long a connect to an existing socket may take before it counts as nobody answering. */
const PROBE_MS = 1000;

/** Resolves true if something accepts a connection on the socket at `path`. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect(path);
    const done = (live: boolean): void => {
      clearTimeout(timer);
      probe.destroy();
      resolve(live);
    };
    // A listener whose backlog is full does not answer in time: still live, not stale.
    const timer = setTimeout(() => done(true), PROBE_MS);
    probe.once('connect', () => done(true));
    probe.once('error', (err: NodeJS.ErrnoException) => done(err.code !== 'ECONNREFUSED' && err.code !== 'ENOENT'));
  });
}

/**
 * Makes `path` free for listen: returns null when it is (removing a stale socket file), or a
 * one-line problem naming the flag.
 */
export async function prepareSocketPath(flag: string, path: string): Promise<string | null> {
  let st;
  try {
    st = await lstat(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    return `${flag} ${path}: ${code === 'ENOTDIR' ? 'a parent is not a directory' : (err as Error).message}`;
  }
  if (!st.isSocket()) return `${flag} ${path}: exists and is not a socket (not removing it; choose another path)`;
  if (await answers(path)) return `${flag} ${path}: another server is listening on this socket`;
  try {
    await unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return `${flag} ${path}: stale socket file cannot be removed: ${(err as Error).message}`;
  }
  return null;
}
