// Status lines and the short error replies every part of the HTTP face answers with.
import type { Reply } from './types.js';

export const STATUS_TEXT: Readonly<Record<number, string>> = {
  200: 'OK',
  204: 'No Content',
  206: 'Partial Content',
  301: 'Moved Permanently',
  304: 'Not Modified',
  308: 'Permanent Redirect',
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  411: 'Length Required',
  412: 'Precondition Failed',
  413: 'Content Too Large',
  414: 'URI Too Long',
  416: 'Range Not Satisfiable',
  426: 'Upgrade Required',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
  505: 'HTTP Version Not Supported',
};

export const SERVER_HEADER = 'Server: muxd\r\n';

export function statusLine(status: number): string {
  return `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Unknown'}\r\n`;
}

/**
 * A short text/plain error reply: "404 Not Found\n". `extraHeaders` are complete lines
 * ending in CRLF (e.g. "Allow: GET, HEAD, OPTIONS\r\n").
 */
export function errorReply(status: number, opts: { extraHeaders?: string; close?: boolean; headOnly?: boolean } = {}): Reply {
  const body = Buffer.from(`${status} ${STATUS_TEXT[status] ?? 'Error'}\n`, 'latin1');
  const head =
    statusLine(status) +
    SERVER_HEADER +
    'Content-Type: text/plain; charset=utf-8\r\n' +
    `Content-Length: ${body.length}\r\n` +
    (opts.extraHeaders ?? '');
  return {
    status,
    head,
    body: opts.headOnly ? [] : [body],
    bodyLength: body.length,
    close: opts.close ?? false,
  };
}
