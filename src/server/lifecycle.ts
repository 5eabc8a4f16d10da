// One `muxd serve` process from start to exit: serve(), the operator's terminal, and signals.
//   SIGTERM, SIGINT  a graceful stop (exit 0, or 1 if work had to be cut at the timeout); a second
//                    one stops at once, still removing socket and temp files (exit 1);
//   SIGHUP           reopens the access log and reloads the TLS certificate and key (new
//                    handshakes get the new pair; a pair that fails keeps the old one, one line).
import { serve, StartupError, type Running } from './serve.js';
import { announceFromTerminal } from './terminal.js';
import { readyLine } from './ready.js';
import type { ServeOptions } from './options.js';

/**
 * Starts the server and keeps it running until a signal stops it. Returns 2 when it could not
 * start (each problem already printed, one line each), or -1: the process keeps running.
 */
export async function runServer(opts: ServeOptions, log: (line: string) => void, problem: (line: string) => void): Promise<number> {
  let running: Running;
  try {
    // Ready lines wait until the signal handlers are in place: a SIGTERM sent the moment a
    // supervisor sees "listening" must drain, not kill the process outright.
    running = await serve(opts, log, { printReady: false });
  } catch (err) {
    if (err instanceof StartupError) {
      for (const p of err.problems) problem(`muxd serve: ${p}`);
      return 2;
    }
    throw err;
  }
  handleSignals(running, opts.limits.shutdownTimeoutMs);
  for (const r of running.ready) log(readyLine(r));
  announceFromTerminal(running.announce, log);
  return -1;
}

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
  process.on('SIGHUP', () => {
    running.reopenLogs();
    const line = running.reloadTls();
    if (line !== null) process.stdout.write(line + '\n');
  });
  // Any other way out (a crash included): no socket file left behind. Synchronous, as 'exit' must be.
  process.once('exit', () => {
    for (const l of running.listeners) l.removeSocketFile();
  });
}
