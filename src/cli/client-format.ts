// Output helpers shared by the client commands: human sizes, error lines, and a transfer
// progress display (a live bar on a terminal, one summary line otherwise).
import cliProgress from 'cli-progress';
import { ErrorCode } from '../wire/protocol.js';
import { LocalCode, MuxError } from '../client/index.js';

export type OutStream = NodeJS.WritableStream & { isTTY?: boolean };

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** 1536 -> "1.5 KiB"; bytes below 1 KiB stay exact. */
export function humanSize(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${Math.round(bytes)} B` : `${value.toFixed(1)} ${UNITS[unit]}`;
}

/** ErrorCode.NOT_FOUND -> "not found". */
const CODE_NAMES = new Map<number, string>(
  Object.entries(ErrorCode).map(([key, code]) => [code, key.toLowerCase().replace(/_/g, ' ')]),
);
const LOCAL_NAMES = new Map<number, string>(
  Object.entries(LocalCode).map(([key, code]) => [code, key.toLowerCase()]),
);

/** One line for stderr, without the trailing newline. */
export function describeError(err: unknown, where: string): string {
  if (err instanceof MuxError) {
    if (err.code > 0) return `muxd: error ${err.code} ${CODE_NAMES.get(err.code) ?? 'unknown'}: ${err.message}`;
    return `muxd: ${LOCAL_NAMES.get(err.code) ?? 'error'}: ${err.message}`;
  }
  const e = err as NodeJS.ErrnoException;
  switch (e.code) {
    case 'ECONNREFUSED':
      return `muxd: cannot connect to ${where}: connection refused (is "muxd serve" running there?)`;
    case 'ENOENT':
      return e.syscall === 'connect' ? `muxd: cannot connect to ${where}: no such socket` : `muxd: ${e.message}`;
    case 'ECONNRESET':
    case 'EPIPE':
      return `muxd: connection to ${where} lost (${e.code})`;
    default:
      return `muxd: ${e.message ?? String(err)}`;
  }
}

export interface Progress {
  update(done: number): void;
  /** Stops the bar; prints a summary line when there was no bar. */
  finish(verb: string): void;
  /** Stops the bar without a summary (on failure). */
  abort(): void;
}

/** A cli-progress bar on a terminal; otherwise silent until finish() prints one line. */
export function startProgress(stderr: OutStream, total: number, start: number): Progress {
  const began = Date.now();
  let last = start;
  const bar = stderr.isTTY
    ? new cliProgress.SingleBar(
        {
          stream: stderr,
          format: '{bar} {percentage}% | {doneHuman} / {totalHuman} | ETA {eta_formatted}',
          hideCursor: true,
          barsize: 30,
        },
        cliProgress.Presets.shades_classic,
      )
    : null;
  bar?.start(total, start, { doneHuman: humanSize(start), totalHuman: humanSize(total) });
  let stopped = false;
  return {
    update(done) {
      last = done;
      bar?.update(done, { doneHuman: humanSize(done) });
    },
    finish(verb) {
      if (stopped) return;
      stopped = true;
      bar?.stop();
      const seconds = Math.max((Date.now() - began) / 1000, 0.001);
      const moved = last - start;
      stderr.write(`${verb} ${humanSize(moved)} in ${seconds.toFixed(2)} s (${humanSize(moved / seconds)}/s)\n`);
    },
    abort() {
      if (stopped) return;
      stopped = true;
      bar?.stop();
    },
  };
}
