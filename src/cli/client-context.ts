// What every client command receives: its parsed flags, where to connect, and the streams to
// talk through (the process's own, or captured ones in tests).
import type { EventEmitter } from 'node:events';
import { connect, connectUdp, type ConnectOptions, type MuxClient, type UdpConnectOptions } from '../client/index.js';
import type { OutStream } from './client-format.js';

export interface ClientIO {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  stdout: OutStream;
  stderr: OutStream;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

export type FlagValue = string | boolean | (string | boolean)[] | undefined;

export interface CommandContext {
  io: ClientIO;
  values: Record<string, FlagValue>;
  positionals: string[];
  conn: ConnectOptions;
  /** --udp: talk MX/1 over UDP (ping, stats, chat) instead of TCP. */
  udp: boolean;
  /** "host:port" or the socket path, for messages. */
  where: string;
  /** " over TLS", " over WebSocket", " over WebSocket/TLS", or "" (plain TCP, Unix, UDP): for messages. */
  via: string;
}

/**
 * What ping, stats and chat need from a client: the TCP client (MuxClient) and the UDP one
 * (MuxUdpClient) both provide it, with the same events.
 */
export interface ChatClient extends EventEmitter {
  ping(payload?: Uint8Array): Promise<Buffer>;
  stats(): Promise<Record<string, unknown>>;
  join(name: string): Promise<string[]>;
  say(text: string): Promise<void>;
  leave(): Promise<void>;
  names(): Promise<string[]>;
  close(): Promise<void>;
  readonly isClosed: boolean;
}

/** The TCP or (with --udp) the UDP client; `udp` overrides the UDP client's options (ping: no resends). */
export async function openClient(ctx: CommandContext, udp: Partial<UdpConnectOptions> = {}): Promise<ChatClient> {
  if (!ctx.udp) return connect(ctx.conn);
  return connectUdp({ host: ctx.conn.host, port: ctx.conn.port, timeoutMs: ctx.conn.timeoutMs, ...udp });
}

/** A bad command line: printed with the command's usage, exit status 2. */
export class UsageError extends Error {}

export function stringFlag(ctx: CommandContext, name: string): string | undefined {
  const v = ctx.values[name];
  return typeof v === 'string' ? v : undefined;
}

export function boolFlag(ctx: CommandContext, name: string): boolean {
  return ctx.values[name] === true;
}

/** A decimal integer flag within [min, max], or undefined when absent. */
export function intFlag(raw: string | undefined, name: string, min: number, max: number): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw)) throw new UsageError(`--${name} must be a whole number, got "${raw}"`);
  const n = Number(raw);
  if (n < min || n > max) throw new UsageError(`--${name} must be between ${min} and ${max}, got ${raw}`);
  return n;
}

/** Connects (TCP), runs `fn`, and always closes the connection. */
export async function withClient<T>(ctx: CommandContext, fn: (client: MuxClient) => Promise<T>): Promise<T> {
  const client = await connect(ctx.conn);
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

/** withClient for the commands that also speak UDP (--udp). */
export async function withChatClient<T>(ctx: CommandContext, fn: (client: ChatClient) => Promise<T>, udp: Partial<UdpConnectOptions> = {}): Promise<T> {
  const client = await openClient(ctx, udp);
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

