// `muxd serve` flags: one table gives each flag its env var, default, kind and help line, so
// parsing, validation and --help can never disagree.
import { parseArgs } from 'node:util';

type Kind = 'string' | 'port' | 'count' | 'bytes' | 'ms' | 'parser';

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
  'files-dir': { kind: 'string', default: './data/files', help: 'MX/1 file store, also served at /files/' },
  'admin-token': { kind: 'string', default: null, help: 'token for MX/1 ANNOUNCE (unset = announcements forbidden)' },
  parser: { kind: 'parser', default: 'muxd', help: 'HTTP parser: muxd (ours) or llhttp (the reference, for benchmarks)' },
  'max-connections': { kind: 'count', default: '10000', help: 'open connections per listener; more get 503 / ERROR 50' },
  'max-request-line': { kind: 'bytes', default: '8KiB', help: 'longest HTTP request line (414 beyond)' },
  'max-head': { kind: 'bytes', default: '16KiB', help: 'largest HTTP request head (431 beyond)' },
  'max-headers': { kind: 'count', default: '100', help: 'most HTTP header fields (431 beyond)' },
  'max-body': { kind: 'bytes', default: '1MiB', help: 'largest HTTP request body read and discarded (413 beyond)' },
  'max-pipeline': { kind: 'count', default: '64', help: 'pipelined HTTP requests in flight per connection before reading pauses' },
  'head-timeout': { kind: 'ms', default: '10s', help: 'time to receive a whole HTTP head (408 after)' },
  'idle-timeout': { kind: 'ms', default: '30s', help: 'idle keep-alive HTTP connection lifetime' },
  'send-timeout': { kind: 'ms', default: '30s', help: 'HTTP: longest stretch a client may take none of our output; longest a request body may take' },
  'max-output': { kind: 'bytes', default: '4MiB', help: 'unsent output per connection: past it, no further request or frame is handled until the client reads (MX/1 chat members past it are dropped)' },
  'cache-max-file': { kind: 'bytes', default: '64KiB', help: 'files up to this size are served from memory' },
  'cache-control-html': { kind: 'string', default: 'no-cache', help: 'Cache-Control for HTML' },
  'cache-control-immutable': { kind: 'string', default: 'public, max-age=31536000, immutable', help: 'Cache-Control for fingerprinted names (app.3f9a2c.js)' },
  'cache-control-other': { kind: 'string', default: 'public, max-age=300', help: 'Cache-Control for everything else' },
  'stats-path': { kind: 'string', default: '/.well-known/muxd/stats', help: 'HTTP path of the live metrics JSON shown on the landing page ("off" disables it)' },
  'access-log': { kind: 'string', default: null, help: 'Combined Log Format access log: a file, or - for stdout (off by default)' },
  'max-frame': { kind: 'bytes', default: '1MiB', help: 'largest MX/1 frame payload, 64KiB..4GiB-1 (ERROR 2 and close beyond)' },
  'max-upload': { kind: 'bytes', default: '1GiB', help: 'largest MX/1 upload (ERROR 22 beyond)' },
  'max-transfers': { kind: 'count', default: '16', help: 'concurrent MX/1 uploads and downloads per connection (ERROR 50 beyond)' },
  'binary-idle-timeout': { kind: 'ms', default: '5m', help: 'idle MX/1 connection lifetime' },
} as const satisfies Record<string, FlagSpec>;

export type FlagName = keyof typeof FLAGS;

export interface ServeOptions {
  root: string;
  host: string;
  httpPort: number;
  binaryPort: number;
  binarySocket: string | null;
  filesDir: string;
  adminToken: string | null;
  parser: 'muxd' | 'llhttp';
  maxConnections: number;
  maxRequestLine: number;
  maxHead: number;
  maxHeaders: number;
  maxBody: number;
  maxPipeline: number;
  headTimeoutMs: number;
  idleTimeoutMs: number;
  sendTimeoutMs: number;
  maxOutput: number;
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
    case 'bytes': {
      const m = /^(\d+)\s*([a-z]*)$/i.exec(raw);
      const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
      if (!m || unit === undefined) return bad('a size such as 65536, 64KiB or 1MiB');
      const n = Number(m[1]) * unit;
      if (!Number.isSafeInteger(n) || n < 1) bad('a size of at least 1 byte');
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
  return {
    root: str('root'),
    host: str('host'),
    httpPort: num('http-port'),
    binaryPort: num('binary-port'),
    binarySocket: get('binary-socket') as string | null,
    filesDir: str('files-dir'),
    adminToken: get('admin-token') as string | null,
    parser: str('parser') as 'muxd' | 'llhttp',
    maxConnections: num('max-connections'),
    maxRequestLine: num('max-request-line'),
    maxHead: num('max-head'),
    maxHeaders: num('max-headers'),
    maxBody: num('max-body'),
    maxPipeline: num('max-pipeline'),
    headTimeoutMs: num('head-timeout'),
    idleTimeoutMs: num('idle-timeout'),
    sendTimeoutMs: num('send-timeout'),
    maxOutput: num('max-output'),
    cacheMaxFile: num('cache-max-file'),
    cacheControlHtml: str('cache-control-html'),
    cacheControlImmutable: str('cache-control-immutable'),
    cacheControlOther: str('cache-control-other'),
    accessLog: get('access-log') as string | null,
    statsPath: statsPath(str('stats-path')),
    maxFrame,
    maxUpload: num('max-upload'),
    maxTransfers: num('max-transfers'),
    binaryIdleTimeoutMs: num('binary-idle-timeout'),
  };
}
