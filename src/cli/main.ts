#!/usr/bin/env node
// The `muxd` command: `serve` runs the server; the other commands are MX/1 clients.
// Each command loads only its own modules, so a client command starts without the server.
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
      const { runPrimary } = await import('../cluster/primary.js');
      runPrimary(opts, log);
      return -1;
    }
    const { announceFromTerminal, serve } = await import('./serve.js');
    let running;
    try {
      running = await serve(opts, log);
    } catch (err) {
      if (err instanceof UsageError) {
        process.stderr.write(`muxd serve: ${err.message}\n`);
        return 2;
      }
      throw err;
    }
    announceFromTerminal(running.binary, log);
    const stop = (): void => {
      void running.close().then(() => process.exit(0));
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    return -1; // keep running
  }
  if (command === 'compress') {
    if (rest.length !== 1 || rest[0]!.startsWith('-')) {
      process.stderr.write('Usage: muxd compress DIR\n');
      return 2;
    }
    const { precompressDir } = await import('../http/static/site.js');
    const written = await precompressDir(rest[0]!);
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

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EADDRINUSE') process.stderr.write(`muxd: ${e.message}: is another server running? Choose another port with --http-port / --binary-port\n`);
    else process.stderr.write(`muxd: ${e.stack ?? String(e)}\n`);
    process.exitCode = 1;
  },
);
