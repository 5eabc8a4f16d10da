// What the HTTP connection tests share: a scripted handler and startHttpServer options with
// roomy limits, so each test overrides only the limit it is about.
import { setTimeout as sleep } from 'node:timers/promises';
import { Metrics } from '../../src/loop/metrics.js';
import type { HttpServerOptions } from '../../src/http/server.js';
import { parserFactory } from '../../src/http/parsers.js';
import { DEFAULT_PARSER_LIMITS, type Handler, type Reply, type RequestHead } from '../../src/http/types.js';
import { SERVER_HEADER, statusLine } from '../../src/http/status.js';
import { openRegular } from '../../src/http/static/open-file.js';

export function textReply(body: string, status = 200): Reply {
  const buf = Buffer.from(body);
  return { status, head: statusLine(status) + SERVER_HEADER + `Content-Length: ${buf.length}\r\n`, body: [buf], bodyLength: buf.length };
}

/**
 * /slow/N answers after N ms; /big streams the file at bigFile() (bigSize bytes) from its
 * descriptor; `more` may answer other targets first; anything else echoes method and target.
 */
export function scriptedHandler(bigFile: () => string, bigSize: number, more?: (head: RequestHead) => Reply | Promise<Reply> | undefined): Handler {
  return {
    handle(head: RequestHead): Reply | Promise<Reply> {
      if (head.target.startsWith('/slow/')) {
        const ms = Number(head.target.slice(6));
        return sleep(ms).then(() => textReply(`slow ${ms}`));
      }
      if (head.target === '/big') {
        return openRegular(bigFile()).then(({ file }) => ({
          status: 200,
          head: statusLine(200) + `Content-Length: ${bigSize}\r\n`,
          body: [{ file, start: 0, end: bigSize - 1 }],
          bodyLength: bigSize,
        }));
      }
      return more?.(head) ?? textReply(`${head.method} ${head.target}`);
    },
  };
}

/** startHttpServer options on a free loopback port: 5 s timeouts, 100 connections, 1 MiB output. */
export function testServerOptions(handler: Handler, over: Partial<HttpServerOptions> = {}): HttpServerOptions {
  return {
    endpoint: { host: '127.0.0.1', port: 0 },
    handler,
    parserFactory: parserFactory('muxd'),
    limits: DEFAULT_PARSER_LIMITS,
    maxConnections: 100,
    headTimeoutMs: 5000,
    idleTimeoutMs: 5000,
    sendTimeoutMs: 5000,
    maxPipeline: 16,
    maxOutputBytes: 1 << 20,
    accessLog: null,
    metrics: new Metrics(),
    log: () => {},
    ...over,
  };
}
