// `muxd serve` flags: one table gives each flag its env var, default, kind and help line, so
// parsing, validation and --help can never disagree.
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';

type Kind = 'string' | 'port' | 'count' | 'count0' | 'bytes' | 'bytes0' | 'ms' | 'parser' | 'udp-port' | 'mode' | 'workers';

interface FlagSpec {
  kind: Kind;
  default: string | null;
  help: string;
}

const FLAGS = {
  root: { kind: 'string', default: './public', help: 'directory served over HTTP' },
  host: { kind: 'string', default: '127.0.0.1', help: 'address both listeners bind to' },
  'http-port': { kind: 'port', default: '8080', help: 'HTTP port (0 = any free port)' },
  'binary-port': { kind: 'port', default: '9000', help: 'MX/1 port (0 = any free port)' },
  'binary-socket': { kind: 'string', default: null, help: 'serve MX/1 on this Unix socket path instead of a TCP port' },
  'http-socket': { kind: 'string', default: null, help: 'serve HTTP on this Unix socket path instead of a TCP port' },
  'socket-mode': { kind: 'mode', default: '0660', help: 'permissions of the --http-socket / --binary-socket files (octal)' },
  'udp-port': { kind: 'udp-port', default: null, help: 'MX/1 over UDP: a port, 0 = any free port, off = disabled (default: the MX/1 port number)' },
  'udp-member-timeout': { kind: 'ms', default: '60s', help: 'a UDP chat member leaves after this long without a datagram' },
  workers: { kind: 'workers', default: '1', help: 'worker processes: N or auto (= cores); 1 = a single process, no primary' },
  'chat-redis': { kind: 'string', default: null, help: 'share the chat room with other muxd servers through this Redis (redis://HOST:PORT)' },
  'shutdown-timeout': { kind: 'ms', default: '30s', help: 'SIGTERM/SIGINT: longest wait for in-flight work before it is cut' },
  'files-dir': { kind: 'string', default: './data/files', help: 'MX/1 file store, also served at /files/' },
  'admin-token': { kind: 'string', default: null, help: 'token for MX/1 ANNOUNCE (unset = announcements forbidden)' },
  parser: { kind: 'parser', default: 'muxd', help: 'HTTP parser: muxd (ours) or llhttp (the reference, for benchmarks)' },
  'max-connections': { kind: 'count', default: '10000', help: 'open connections per listener; more get 503 / ERROR 51' },
  'listen-backlog': { kind: 'count', default: '4096', help: "each listener's accept queue (the kernel clamps it to net.core.somaxconn); a connection arriving to a full queue waits for a TCP retransmission, 200 ms or more" },
  'max-connections-per-ip': { kind: 'count0', default: '1024', help: 'open connections per client address on each face (0 = no limit); more get 503 / ERROR 51' },
  'max-request-line': { kind: 'bytes', default: '8KiB', help: 'longest HTTP request line (414 beyond)' },
  'max-head': { kind: 'bytes', default: '16KiB', help: 'largest HTTP request head (431 beyond)' },
  'max-headers': { kind: 'count', default: '100', help: 'most HTTP header fields (431 beyond)' },
  'max-body': { kind: 'bytes', default: '1MiB', help: 'largest HTTP request body read and discarded (413 beyond)' },
  'max-pipeline': { kind: 'count', default: '64', help: 'pipelined HTTP requests in flight per connection before reading pauses' },
  'head-timeout': { kind: 'ms', default: '10s', help: 'time to receive a whole HTTP head (408 after)' },
  'idle-timeout': { kind: 'ms', default: '30s', help: 'idle keep-alive HTTP connection lifetime' },
  'send-timeout': { kind: 'ms', default: '30s', help: 'HTTP: longest stretch a client may take none of our output; longest a request body may take' },
  'max-output': { kind: 'bytes', default: '4MiB', help: 'unsent output per connection: past it, no further request or frame is handled until the client reads (MX/1 chat members past it are dropped)' },
  'tcp-notsent-lowat': { kind: 'bytes0', default: '128KiB', help: 'TCP: unsent bytes the kernel keeps per connection before write() waits for the reader (Linux TCP_NOTSENT_LOWAT; 0 = kernel default, up to tcp_wmem max)' },
  'max-output-total': { kind: 'bytes', default: '256MiB', help: 'unsent output of the whole server: past it, file read chunks shrink' },
  'cache-max-file': { kind: 'bytes', default: '64KiB', help: 'files up to this size are served from memory' },
  'cache-control-html': { kind: 'string', default: 'no-cache', help: 'Cache-Control for HTML' },
  'cache-control-immutable': { kind: 'string', default: 'public, max-age=31536000, immutable', help: 'Cache-Control for fingerprinted names (app.3f9a2c.js)' },
  'cache-control-other': { kind: 'string', default: 'public, max-age=300', help: 'Cache-Control for everything else' },
  'stats-path': { kind: 'string', default: '/.well-known/muxd/stats', help: 'HTTP path of the live metrics JSON shown on the landing page ("off" disables it)' },
  'access-log': { kind: 'string', default: null, help: 'Combined Log Format access log: a file, or - for stdout (off by default)' },
  'max-frame': { kind: 'bytes', default: '1MiB', help: 'largest MX/1 frame payload, 64KiB..4GiB-1 (ERROR 2 and close beyond)' },
  'max-upload': { kind: 'bytes', default: '1GiB', help: 'largest MX/1 upload (ERROR 22 beyond)' },
  'max-transfers': { kind: 'count', default: '16', help: 'concurrent MX/1 uploads and downloads per connection (ERROR 51 beyond)' },
  'max-transfers-total': { kind: 'count', default: '256', help: 'concurrent MX/1 uploads and downloads of the whole server (ERROR 51 beyond)' },
  'transfer-timeout': { kind: 'ms', default: '30s', help: 'an MX/1 transfer without progress for this long is aborted (ERROR 27)' },
  'upload-token': { kind: 'string', default: null, help: 'MX/1 PUT needs AUTH with this token (unset = uploads only from loopback and Unix-socket peers)' },
  'binary-hello-timeout': { kind: 'ms', default: '10s', help: 'a new MX/1 connection must send a whole first frame within this' },
  'binary-idle-timeout': { kind: 'ms', default: '5m', help: 'idle MX/1 connection lifetime' },
} as const satisfies Record<string, FlagSpec>;

export type FlagName = keyof typeof FLAGS;

export interface ServeOptions {
  root: string;
  host: string;
  httpPort: number;
  binaryPort: number;
  binarySocket: string | null;
  httpSocket: string | null;
  /** Permission bits of the Unix socket files. */
  socketMode: number;
  /** null = UDP off; 0 = any free port. */
  udpPort: number | null;
  udpMemberTimeoutMs: number;
  /** Worker processes; 1 = one process, no primary. */
  workers: number;
  chatRedis: string | null;
  shutdownTimeoutMs: number;
  filesDir: string;
  adminToken: string | null;
  parser: 'muxd' | 'llhttp';
  maxConnections: number;
  /** 0 = no per-address limit. */
  maxConnectionsPerIp: number;
  listenBacklog: number;
  maxRequestLine: number;
  maxHead: number;
  maxHeaders: number;
  maxBody: number;
  maxPipeline: number;
  headTimeoutMs: number;
  idleTimeoutMs: number;
  sendTimeoutMs: number;
  maxOutput: number;
  maxOutputTotal: number;
  tcpNotsentLowat: number;
  cacheMaxFile: number;
  cacheControlHtml: string;
  cacheControlImmutable: string;
  cacheControlOther: string;
  accessLog: string | null;
  /** null = no stats route. */
  statsPath: string | null;
  maxFrame: number;
  maxUpload: number;
  maxTransfers: number;
  maxTransfersTotal: number;
  transferTimeoutMs: number;
  uploadToken: string | null;
  binaryHelloTimeoutMs: number;
  binaryIdleTimeoutMs: number;
}

export class UsageError extends Error {}

const MIN_MAX_FRAME = 64 * 1024;

/** MUXD_HTTP_PORT for --http-port. */
export function envName(flag: string): string {
  return 'MUXD_' + flag.toUpperCase().replace(/-/g, '_');
}

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1 << 20, mb: 1 << 20, mib: 1 << 20, g: 1 << 30, gb: 1 << 30, gib: 1 << 30 };
const TIME_UNITS: Record<string, number> = { '': 1, ms: 1, s: 1000, m: 60_000 };

function parseValue(flag: string, kind: Kind, raw: string): string | number {
  const bad = (what: string): never => {
    throw new UsageError(`--${flag}: expected ${what}, got "${raw}"`);
  };
  switch (kind) {
    case 'string':
      return raw;
    case 'parser':
      return raw === 'muxd' || raw === 'llhttp' ? raw : bad('muxd or llhttp');
    case 'port': {
      if (!/^\d{1,5}$/.test(raw) || Number(raw) > 65535) bad('a port number 0..65535');
      return Number(raw);
    }
    case 'count': {
      if (!/^\d{1,9}$/.test(raw) || Number(raw) < 1) bad('a whole number of at least 1');
      return Number(raw);
    }
    case 'count0': {
      if (!/^\d{1,9}$/.test(raw)) bad('a whole number (0 = no limit)');
      return Number(raw);
    }
    case 'udp-port': {
      if (raw === 'off') return -1;
      if (!/^\d{1,5}$/.test(raw) || Number(raw) > 65535) bad('a port number 0..65535 or "off"');
      return Number(raw);
    }
    case 'mode': {
      if (!/^0?[0-7]{3}$/.test(raw)) bad('octal permissions such as 0660');
      return parseInt(raw, 8);
    }
    case 'workers': {
      if (raw === 'auto') return availableParallelism();
      if (!/^\d{1,3}$/.test(raw) || Number(raw) < 1 || Number(raw) > 256) bad('a number of workers 1..256 or "auto"');
      return Number(raw);
    }
    case 'bytes':
    case 'bytes0': {
      const m = /^(\d+)\s*([a-z]*)$/i.exec(raw);
      const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
      if (!m || unit === undefined) return bad('a size such as 65536, 64KiB or 1MiB');
      const n = Number(m[1]) * unit;
      if (!Number.isSafeInteger(n) || n < (kind === 'bytes0' ? 0 : 1)) bad(kind === 'bytes0' ? 'a size (0 = off)' : 'a size of at least 1 byte');
      return n;
    }
    case 'ms': {
      const m = /^(\d+)\s*(ms|s|m)?$/.exec(raw);
      if (!m) return bad('a duration such as 500ms, 10s or 5m');
      const n = Number(m[1]) * TIME_UNITS[m[2] ?? '']!;
      if (n < 1) bad('a duration of at least 1 ms');
      return n;
    }
  }
}

function statsPath(raw: string): string | null {
  if (raw === 'off') return null;
  if (!raw.startsWith('/') || /[\s?#%]/.test(raw)) throw new UsageError(`--stats-path: expected a path such as /stats.json or "off", got "${raw}"`);
  return raw;
}

function chatRedis(raw: string | null): string | null {
  if (raw === null || raw === '') return null;
  if (!/^rediss?:\/\/[^\s]+$/.test(raw)) throw new UsageError(`--chat-redis: expected a URL such as redis://127.0.0.1:6379, got "${raw}"`);
  return raw;
}

export function serveUsage(): string {
  const lines = ['Usage: muxd serve [flags]', '', 'Every flag can also be set by its environment variable; a flag wins over the environment.', ''];
  for (const [flag, spec] of Object.entries(FLAGS) as [FlagName, FlagSpec][]) {
    const def = spec.default === null ? '' : ` (default ${spec.default})`;
    lines.push(`  --${flag.padEnd(24)} ${spec.help}${def}`);
    lines.push(`  ${''.padEnd(26)} env ${envName(flag)}`);
  }
  return lines.join('\n');
}

/** Parses flags, then env vars, then defaults. Throws UsageError on anything unknown or invalid. */
export function parseServeOptions(argv: string[], env: NodeJS.ProcessEnv = process.env): ServeOptions | 'help' {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = { help: { type: 'boolean', short: 'h' } };
  for (const flag of Object.keys(FLAGS)) options[flag] = { type: 'string' };
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help === true) return 'help';
  const get = (flag: FlagName): string | number | null => {
    const spec: FlagSpec = FLAGS[flag];
    const fromFlag = values[flag];
    const raw = typeof fromFlag === 'string' ? fromFlag : (env[envName(flag)] ?? spec.default);
    return raw === null ? null : parseValue(flag, spec.kind, raw);
  };
  const str = (flag: FlagName): string => get(flag) as string;
  const num = (flag: FlagName): number => get(flag) as number;
  const maxFrame = num('max-frame');
  // Clients send file content in 64 KiB DATA frames, and the length field is a u32.
  if (maxFrame < MIN_MAX_FRAME || maxFrame > 0xffffffff) throw new UsageError(`--max-frame: must be between 64KiB and 4GiB-1, got ${maxFrame} bytes`);
  const binaryPort = num('binary-port');
  const udpPort = get('udp-port') as number | null;
  return {
    root: str('root'),
    host: str('host'),
    httpPort: num('http-port'),
    binaryPort,
    binarySocket: get('binary-socket') as string | null,
    httpSocket: get('http-socket') as string | null,
    socketMode: num('socket-mode'),
    // The UDP face shares the MX/1 port number unless told otherwise; -1 is "off".
    udpPort: udpPort === null ? binaryPort : udpPort === -1 ? null : udpPort,
    udpMemberTimeoutMs: num('udp-member-timeout'),
    workers: num('workers'),
    chatRedis: chatRedis(get('chat-redis') as string | null),
    shutdownTimeoutMs: num('shutdown-timeout'),
    filesDir: str('files-dir'),
    adminToken: get('admin-token') as string | null,
    parser: str('parser') as 'muxd' | 'llhttp',
    maxConnections: num('max-connections'),
    maxConnectionsPerIp: num('max-connections-per-ip'),
    listenBacklog: num('listen-backlog'),
    maxRequestLine: num('max-request-line'),
    maxHead: num('max-head'),
    maxHeaders: num('max-headers'),
    maxBody: num('max-body'),
    maxPipeline: num('max-pipeline'),
    headTimeoutMs: num('head-timeout'),
    idleTimeoutMs: num('idle-timeout'),
    sendTimeoutMs: num('send-timeout'),
    maxOutput: num('max-output'),
    maxOutputTotal: num('max-output-total'),
    tcpNotsentLowat: num('tcp-notsent-lowat'),
    cacheMaxFile: num('cache-max-file'),
    cacheControlHtml: str('cache-control-html'),
    cacheControlImmutable: str('cache-control-immutable'),
    cacheControlOther: str('cache-control-other'),
    accessLog: get('access-log') as string | null,
    statsPath: statsPath(str('stats-path')),
    maxFrame,
    maxUpload: num('max-upload'),
    maxTransfers: num('max-transfers'),
    maxTransfersTotal: num('max-transfers-total'),
    transferTimeoutMs: num('transfer-timeout'),
    uploadToken: get('upload-token') as string | null,
    binaryHelloTimeoutMs: num('binary-hello-timeout'),
    binaryIdleTimeoutMs: num('binary-idle-timeout'),
  };
}
