// Everything `muxd serve` can check before it starts, each problem as one line naming its flag,
// so the operator sees all of them at once and nothing is left half up.
import { constants, closeSync, openSync } from 'node:fs';
import { access, mkdir, stat, unlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { prepareSocketPath } from '../loop/unix-socket.js';
import { activeListeners, type NamedEndpoint } from './listeners.js';
import type { ServeOptions } from './options.js';
import { loadTlsMaterial } from './tls.js';

/** One line for a failed listen, naming the flag. */
export function describeListenError({ flag, endpoint }: NamedEndpoint, err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if ('path' in endpoint) {
    switch (code) {
      case 'EADDRINUSE':
        return `${flag} ${endpoint.path}: already in use`;
      case 'EACCES':
        return `${flag} ${endpoint.path}: permission denied`;
      case 'ENOENT':
        return `${flag} ${endpoint.path}: its directory does not exist`;
      default:
        return `${flag} ${endpoint.path}: cannot listen: ${(err as Error).message}`;
    }
  }
  const where = `${endpoint.host.includes(':') ? `[${endpoint.host}]` : endpoint.host}:${endpoint.port}`;
  switch (code) {
    case 'EADDRINUSE':
      return `${flag} ${endpoint.port}: ${where} is already in use (another server running? choose another port with ${flag})`;
    case 'EACCES':
      return `${flag} ${endpoint.port}: permission denied for ${where} (ports below 1024 need privileges)`;
    case 'EADDRNOTAVAIL':
      return `--host ${endpoint.host}: not an address of this machine`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `--host ${endpoint.host}: cannot resolve this name`;
    default:
      return `${flag} ${endpoint.port}: cannot listen on ${where}: ${(err as Error).message}`;
  }
}

/**
 * Binds every endpoint at once (so two flags naming one port are caught too), then lets go:
 * every problem as a line. A stale Unix socket file is removed first; a live one is a problem.
 */
async function probeEndpoints(named: NamedEndpoint[]): Promise<string[]> {
  const problems: string[] = [];
  const bound: net.Server[] = [];
  await Promise.all(
    named.map(async (n) => {
      if ('path' in n.endpoint) {
        const problem = await prepareSocketPath(n.flag, n.endpoint.path);
        if (problem !== null) {
          problems.push(problem);
          return;
        }
      }
      const server = net.createServer();
      await new Promise<void>((resolve) => {
        server.once('error', (err) => {
          problems.push(describeListenError(n, err));
          resolve();
        });
        const done = (): void => {
          bound.push(server);
          resolve();
        };
        if ('path' in n.endpoint) server.listen(n.endpoint.path, done);
        else server.listen(n.endpoint.port, n.endpoint.host, done);
      });
    }),
  );
  // Closing a Unix socket server removes its file (libuv unlinks it).
  await Promise.all(bound.map((s) => new Promise((resolve) => s.close(resolve))));
  return problems;
}

async function checkRoot(flag: string, given: string): Promise<string | null> {
  const dir = path.resolve(given);
  try {
    const st = await stat(dir);
    if (!st.isDirectory()) return `${flag} ${given}: not a directory`;
    await access(dir, constants.R_OK | constants.X_OK);
    return null;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return `${flag} ${given}: no such directory`;
    if (code === 'EACCES') return `${flag} ${given}: not readable (permission denied)`;
    return `${flag} ${given}: ${(err as Error).message}`;
  }
}

/**
 * mkdir -p, one level at a time. Node's own recursive mkdir never returns on a path under /proc
 * (each level's ENOENT sends it back to the parent, forever, at full CPU).
 */
async function makeDirs(dir: string): Promise<void> {
  const missing: string[] = [];
  let at = dir;
  for (;;) {
    const st = await stat(at).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return null;
      throw err;
    });
    if (st !== null) break;
    missing.unshift(at);
    const parent = path.dirname(at);
    if (parent === at) break;
    at = parent;
  }
  for (const d of missing) {
    await mkdir(d).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
  }
}

/** The files dir must exist (we create it) and take a new file: a PUT must not be the first to find out. */
async function checkFilesDir(flag: string, given: string): Promise<string | null> {
  const dir = path.resolve(given);
  try {
    await makeDirs(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTDIR') return `${flag} ${given}: not a directory`;
    return `${flag} ${given}: cannot be created: ${(err as Error).message}`;
  }
  const st = await stat(dir).catch(() => null);
  if (st === null || !st.isDirectory()) return `${flag} ${given}: not a directory`;
  const probe = path.join(dir, `.muxd-write-check-${process.pid}`);
  try {
    await writeFile(probe, '', { flag: 'wx' });
    await unlink(probe);
    return null;
  } catch (err) {
    await unlink(probe).catch(() => undefined);
    const code = (err as NodeJS.ErrnoException).code ?? '';
    return `${flag} ${given}: not writable (${code || (err as Error).message}): uploads could not be stored`;
  }
}

function checkAppendable(flag: string, file: string): string | null {
  try {
    closeSync(openSync(file, 'a'));
    return null;
  } catch (err) {
    return `${flag}: cannot open ${file} for appending: ${(err as Error).message}`;
  }
}

/** Both TLS files or neither; each readable, a certificate and its own key. */
function checkTls(opts: ServeOptions): string[] {
  const { cert, key } = opts.tls;
  if (cert === null && key === null) return opts.tls.httpsRedirect ? ['--https-redirect: needs --tls-cert and --tls-key (there is no HTTPS port to redirect to)'] : [];
  if (cert === null) return [`--tls-key ${key}: given without --tls-cert`];
  if (key === null) return [`--tls-cert ${cert}: given without --tls-key`];
  const loaded = loadTlsMaterial(cert, key);
  return 'problems' in loaded ? loaded.problems : [];
}

/**
 * Every problem that would stop `muxd serve` from starting whole; empty = go. `probe: false` for
 * a cluster worker: its listeners are the primary's, which probed them once; `tlsFiles: false`
 * likewise for the TLS pair the primary hands it.
 */
export async function preflight(opts: ServeOptions, { probe = true, tlsFiles = true }: { probe?: boolean; tlsFiles?: boolean } = {}): Promise<string[]> {
  const { accessLog } = opts.http;
  const lines = await Promise.all([
    checkRoot('--root', opts.http.root),
    checkFilesDir('--files-dir', opts.files.dir),
    accessLog !== null && accessLog !== '-' ? checkAppendable('--access-log', accessLog) : null,
  ]);
  const problems = lines.filter((l): l is string => l !== null);
  // A cluster worker's pair comes from the primary, which checked the files.
  if (tlsFiles) problems.push(...checkTls(opts));
  // A probe listen in a cluster worker would join the primary's shared socket and be handed
  // real connections; and its socket-file handling would touch the file every worker serves.
  // Stream listeners only: a UDP bind that fails is reported when it starts.
  if (probe) problems.push(...(await probeEndpoints(activeListeners(opts).filter((l) => l.row.transport !== 'udp').map((l) => l.at))));
  // One bad --host fails both listeners: say it once.
  return [...new Set(problems)];
}
