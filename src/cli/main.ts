#!/usr/bin/env node
// The `muxd` command: `serve` runs the server; the other commands are MX/1 clients.
// Each command loads only its own modules, so a client command starts without the server.
import { stat } from 'node:fs/promises';
import type { Running } from './serve.js';
import { parseServeOptions, serveUsage, UsageError } from './serve-options.js';
import { parseWorkerInfo, WORKER_ENV } from '../cluster/messages.js';

const CLIENT_COMMANDS = new Set(['ping', 'stats', 'chat', 'put', 'get', 'ls', 'announce']);

const USAGE = `Usage: muxd <command> [flags]

Server:
  serve                  HTTP static site (default :8080) and MX/1 (default :9000); muxd serve --help
  compress DIR           write .gz and .br beside compressible files, for precompressed serving

MX/1 clients (all take --host, --port, --socket, --timeout):
  ping [--count N] [--size BYTES]
  stats [--json]
  chat --name NAME       interactive chat; Ctrl-D leaves
  put FILE [--as NAME]   upload with a SHA-256 check
  get NAME [-o FILE] [--resume]
  ls [--json]
  announce TEXT          needs --token or MUXD_ADMIN_TOKEN
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command === 'serve') {
    let opts;
    try {
      opts = parseServeOptions(rest);
    } catch (err) {
      if (err instanceof UsageError) {
        process.stderr.write(`muxd serve: ${err.message}\nRun "muxd serve --help" for the flags.\n`);
        return 2;
      }
      throw err;
    }
    if (opts === 'help') {
      process.stdout.write(serveUsage() + '\n');
      return 0;
    }
    const log = (line: string): void => {
      process.stdout.write(line + '\n');
    };
    // --workers N > 1: this process becomes the primary, and the workers it forks run this same
    // command line, told apart by their environment (src/cluster).
    const workerInfo = process.env[WORKER_ENV] === undefined ? null : parseWorkerInfo(process.env[WORKER_ENV]);
    if (workerInfo !== null) {
      const { runWorker } = await import('../cluster/worker.js');
      await runWorker(opts, workerInfo, log);
      return -1;
    }
    if (opts.workers > 1) {
      // The same all-or-nothing checks as one process, once, before any worker starts.
      const { preflight } = await import('./preflight.js');
      const problems = await preflight(opts);
      if (problems.length > 0) {
        for (const problem of problems) process.stderr.write(`muxd serve: ${problem}\n`);
        return 2;
      }
      const { runPrimary } = await import('../cluster/primary.js');
      runPrimary(opts, log);
      return -1;
    }
    const { announceFromTerminal, serve, StartupError } = await import('./serve.js');
    let running: Awaited<ReturnType<typeof serve>>;
    try {
      running = await serve(opts, log);
    } catch (err) {
      if (err instanceof StartupError) {
        for (const problem of err.problems) process.stderr.write(`muxd serve: ${problem}\n`);
        return 2;
      }
      throw err;
    }
    announceFromTerminal(running.binary, log);
    handleSignals(running, opts.shutdownTimeoutMs);
    return -1; // keep running
  }
  if (command === 'compress') {
    if (rest.length !== 1 || rest[0]!.startsWith('-')) {
      process.stderr.write('Usage: muxd compress DIR\n');
      return 2;
    }
    const dir = rest[0]!;
    const st = await stat(dir).catch((err: NodeJS.ErrnoException) => err);
    if (st instanceof Error || !st.isDirectory()) {
      const why = !(st instanceof Error) ? 'not a directory' : st.code === 'ENOENT' ? 'no such directory' : st.message;
      process.stderr.write(`muxd compress: ${dir}: ${why}\n`);
      return 2;
    }
    const { precompressDir } = await import('../http/static/site.js');
    const written = await precompressDir(dir);
    for (const file of written) process.stdout.write(file + '\n');
    return 0;
  }
  if (CLIENT_COMMANDS.has(command)) {
    const { runClientCommand } = await import('./client-commands.js');
    return runClientCommand(command, rest);
  }
  process.stderr.write(`muxd: unknown command "${command}"\n\n${USAGE}`);
  return 2;
}

/**
 * SIGTERM/SIGINT: a graceful stop (exit 0, or 1 if work had to be cut at the timeout); a second
 * one stops at once, still removing socket and temp files (exit 1). SIGHUP reopens the access log.
 */
function handleSignals(running: Running, timeoutMs: number): void {
  let stopping = false;
  const onStop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      process.stdout.write(`muxd: ${signal} again: stopping now\n`);
      // The hard stop is quick; if anything hangs, exit anyway (the socket files go first, synchronously).
      setTimeout(() => process.exit(1), 2000).unref();
      void running.close().finally(() => process.exit(1));
      return;
    }
    stopping = true;
    running.shutdown(timeoutMs).then(
      (report) => process.exit(report.cut > 0 ? 1 : 0),
      (err: unknown) => {
        process.stderr.write(`muxd: shutdown failed: ${(err as Error).message}\n`);
        void running.close().finally(() => process.exit(1));
      },
    );
  };
  process.on('SIGINT', onStop);
  process.on('SIGTERM', onStop);
  process.on('SIGHUP', () => running.reopenLogs());
  // Any other way out (a crash included): no socket file left behind. Synchronous, as 'exit' must be.
  process.once('exit', () => {
    for (const l of running.listeners) l.removeSocketFile();
  });
}

// `muxd stats | head`: the reader went away. That ends our output, not in a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    const e = err as NodeJS.ErrnoException;
    // An operator's mistake (a file, a permission, a port) is one line; only a bug gets a stack.
    if (typeof e.code === 'string' && typeof e.syscall === 'string') process.stderr.write(`muxd: ${e.message}\n`);
    else process.stderr.write(`muxd: ${e.stack ?? String(e)}\n`);
    process.exitCode = 1;
  },
);
