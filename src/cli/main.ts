#!/usr/bin/env node
// The `muxd` command: `serve` runs the server; the other commands are MX/1 clients.
// Each command loads only its own modules, so a client command starts without the server.
import { stat } from 'node:fs/promises';
import { parseServeOptions, serveUsage, UsageError } from '../server/options.js';
import { parseWorkerInfo, WORKER_ENV } from '../cluster/messages.js';

const CLIENT_COMMANDS = new Set(['ping', 'stats', 'chat', 'put', 'get', 'ls', 'announce']);

const USAGE = `Usage: muxd <command> [flags]

Server:
  serve                  HTTP static site (default :8080) and MX/1 (default :9000); muxd serve --help
  compress DIR           write .gz and .br beside compressible files, for precompressed serving

MX/1 clients (all take --host, --port, --socket, --timeout, --url ws://…|wss://…,
  --tls, --ca FILE, --servername NAME, --insecure; muxd <command> --help):
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
      opts = parseServeOptions(rest, process.env);
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
    if (opts.cluster.workers > 1) {
      // The same all-or-nothing checks as one process, once, before any worker starts.
      const { preflight } = await import('../server/preflight.js');
      const problems = await preflight(opts);
      if (problems.length > 0) {
        for (const problem of problems) process.stderr.write(`muxd serve: ${problem}\n`);
        return 2;
      }
      const { runPrimary } = await import('../cluster/primary.js');
      // @redis/client is an optional dependency: loaded only when --chat-redis asks for it.
      let redisHub: typeof import('../chat/redis-hub.js').RedisHub | undefined;
      if (opts.chat.redis !== null) {
        try {
          ({ RedisHub: redisHub } = await import('../chat/redis-hub.js'));
        } catch {
          process.stderr.write('muxd serve: --chat-redis needs @redis/client, an optional dependency that is not installed\n');
          return 2;
        }
      }
      runPrimary(opts, log, redisHub === undefined ? {} : { redisHub });
      return -1;
    }
    const { runServer } = await import('../server/lifecycle.js');
    return runServer(opts, log, (line) => process.stderr.write(line + '\n'));
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
