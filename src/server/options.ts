// `muxd serve` flags: one table gives each flag its env var, default, kind, help line and the
// place of its value in the grouped options (group and field), so parsing, validation, --help
// and the ServeOptions type can never disagree: the type below is derived from the table.
import { defaultRoot } from './default-root.js';
import { normalizeOrigin } from '../ws/handshake.js';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';

export class UsageError extends Error {}

/** How a kind says a value is wrong: "--flag: expected WHAT, got "raw"", or a sentence of its own. */
interface Complaint {
  expected(what: string): never;
  say(text: string): never;
}

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1 << 20, mb: 1 << 20, mib: 1 << 20, g: 1 << 30, gb: 1 << 30, gib: 1 << 30 };
const TIME_UNITS: Record<string, number> = { '': 1, ms: 1, s: 1000, m: 60_000 };
const MIN_MAX_FRAME = 64 * 1024;

function size(raw: string, min: 0 | 1, bad: Complaint): number {
  const m = /^(\d+)\s*([a-z]*)$/i.exec(raw);
  const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) return bad.expected('a size such as 65536, 64KiB or 1MiB');
  const n = Number(m[1]) * unit;
  if (!Number.isSafeInteger(n) || n < min) bad.expected(min === 0 ? 'a size (0 = off)' : 'a size of at least 1 byte');
  return n;
}

/** "500ms", "10s", "5m" or bare milliseconds; at least `min` ms. */
function duration(raw: string, min: 0 | 1, bad: Complaint, example: string): number {
  const m = /^(\d+)\s*(ms|s|m)?$/.exec(raw);
  if (!m) return bad.expected(example);
  const n = Number(m[1]) * TIME_UNITS[m[2] ?? '']!;
  if (n < min) bad.expected('a duration of at least 1 ms');
  return n;
}

/** An HTTP path of ours ("off" = none): absolute, and nothing a request target would escape or split. */
function pathOrOff(raw: string, bad: Complaint, example: string): string | null {
  if (raw === 'off') return null;
  if (!raw.startsWith('/') || /[\s?#%]/.test(raw)) bad.expected(`a path such as ${example} or "off"`);
  return raw;
}

function port(raw: string, bad: Complaint, what = 'a port number 0..65535'): number {
  if (!/^\d{1,5}$/.test(raw) || Number(raw) > 65535) bad.expected(what);
  return Number(raw);
}

/** Each kind turns the raw text (flag, env var or default) into its value; the return types make ServeOptions. */
const KINDS = {
  string: (raw: string): string => raw,
  parser: (raw: string, bad: Complaint): 'muxd' | 'llhttp' => (raw === 'muxd' || raw === 'llhttp' ? raw : bad.expected('muxd or llhttp')),
  port: (raw: string, bad: Complaint): number => port(raw, bad),
  count: (raw: string, bad: Complaint): number => {
    if (!/^\d{1,9}$/.test(raw) || Number(raw) < 1) bad.expected('a whole number of at least 1');
    return Number(raw);
  },
  count0: (raw: string, bad: Complaint): number => {
    if (!/^\d{1,9}$/.test(raw)) bad.expected('a whole number (0 = no limit)');
    return Number(raw);
  },
  /** null = this plain listener off (--http-port off, --binary-port off). */
  'listen-port': (raw: string, bad: Complaint): number | null => (raw === 'off' ? null : port(raw, bad, 'a port number 0..65535 or "off"')),
  /** A flag that takes no value; its env var says 1/true/yes or 0/false/no. */
  switch: (raw: string, bad: Complaint): boolean => {
    if (/^(1|true|yes|on)$/i.test(raw)) return true;
    if (/^(0|false|no|off|)$/i.test(raw)) return false;
    return bad.expected('true or false');
  },
  'tls-version': (raw: string, bad: Complaint): 'TLSv1.2' | 'TLSv1.3' => (raw === '1.2' ? 'TLSv1.2' : raw === '1.3' ? 'TLSv1.3' : bad.expected('1.2 or 1.3')),
  seconds: (raw: string, bad: Complaint): number => {
    if (!/^\d{1,10}$/.test(raw)) bad.expected('a whole number of seconds');
    return Number(raw);
  },
  /** null = UDP off. */
  'udp-port': (raw: string, bad: Complaint): number | null => (raw === 'off' ? null : port(raw, bad, 'a port number 0..65535 or "off"')),
  mode: (raw: string, bad: Complaint): number => {
    if (!/^0?[0-7]{3}$/.test(raw)) bad.expected('octal permissions such as 0660');
    return parseInt(raw, 8);
  },
  workers: (raw: string, bad: Complaint): number => {
    if (raw === 'auto') return availableParallelism();
    if (!/^\d{1,3}$/.test(raw) || Number(raw) < 1 || Number(raw) > 256) bad.expected('a number of workers 1..256 or "auto"');
    return Number(raw);
  },
  bytes: (raw: string, bad: Complaint): number => size(raw, 1, bad),
  bytes0: (raw: string, bad: Complaint): number => size(raw, 0, bad),
  /** Clients send file content in 64 KiB DATA frames, and the length field is a u32. */
  'frame-size': (raw: string, bad: Complaint): number => {
    const n = size(raw, 1, bad);
    if (n < MIN_MAX_FRAME || n > 0xffffffff) bad.say(`must be between 64KiB and 4GiB-1, got ${n} bytes`);
    return n;
  },
  /** A duration where 0 turns the thing off. */
  ms0: (raw: string, bad: Complaint): number => duration(raw, 0, bad, 'a duration such as 500ms, 30s or 0 (off)'),
  ms: (raw: string, bad: Complaint): number => duration(raw, 1, bad, 'a duration such as 500ms, 10s or 5m'),
  /** null = no stats route. */
  'stats-path': (raw: string, bad: Complaint): string | null => pathOrOff(raw, bad, '/stats.json'),
  /** null = no WebSocket route. */
  'ws-path': (raw: string, bad: Complaint): string | null => pathOrOff(raw, bad, '/.well-known/muxd/mx'),
  /** '*' = any Origin; a list of scheme://host[:port] origins besides our own. */
  origins: (raw: string, bad: Complaint): readonly string[] | '*' => {
    if (raw.trim() === '*') return '*';
    const out: string[] = [];
    for (const part of raw.split(',')) {
      const t = part.trim();
      if (t === '') continue;
      if (normalizeOrigin(t) === null || t === 'null') bad.expected('comma-separated origins such as https://app.example:8443, or *');
      out.push(t);
    }
    return out;
  },
  /** An empty value (MUXD_CHAT_REDIS=) is no Redis. */
  'redis-url': (raw: string, bad: Complaint): string | null => {
    if (raw === '') return null;
    if (!/^rediss?:\/\/[^\s]+$/.test(raw)) bad.expected('a URL such as redis://127.0.0.1:6379');
    return raw;
  },
} as const;

type Kind = keyof typeof KINDS;

/** The concerns the options are grouped by; each part of the server takes only its groups. */
export type Group = 'listen' | 'limits' | 'http' | 'ws' | 'mx' | 'files' | 'chat' | 'cluster' | 'tls';

interface FlagSpec {
  group: Group;
  field: string;
  kind: Kind;
  /** The text used when neither flag nor env var is given; null = unset; `from` = another flag's text. */
  default: string | null | { from: string };
  help: string;
}

// The order here is the order of --help.
const FLAGS = {
  root: { group: 'http', field: 'root', kind: 'string', default: './public', help: 'directory served over HTTP (./public if the working directory has one, else the site shipped with muxd)' },
  host: { group: 'listen', field: 'host', kind: 'string', default: '127.0.0.1', help: 'address both listeners bind to' },
  'http-port': { group: 'listen', field: 'httpPort', kind: 'listen-port', default: '8080', help: 'HTTP port (0 = any free port, off = no plain HTTP listener)' },
  'binary-port': { group: 'listen', field: 'binaryPort', kind: 'listen-port', default: '9000', help: 'MX/1 port (0 = any free port, off = no plain MX/1 TCP listener)' },
  // TLS (issue 16): the two TLS listeners exist only when both files are given.
  'tls-cert': { group: 'tls', field: 'cert', kind: 'string', default: null, help: 'TLS certificate (PEM, may hold the chain): adds the HTTPS and MX/1-over-TLS listeners; SIGHUP reloads it' },
  'tls-key': { group: 'tls', field: 'key', kind: 'string', default: null, help: 'private key of --tls-cert (PEM)' },
  'https-port': { group: 'tls', field: 'httpsPort', kind: 'port', default: '8443', help: 'HTTPS port, with --tls-cert (0 = any free port)' },
  'binary-tls-port': { group: 'tls', field: 'binaryTlsPort', kind: 'port', default: '9443', help: 'MX/1 over TLS port, with --tls-cert (0 = any free port)' },
  'tls-min-version': { group: 'tls', field: 'minVersion', kind: 'tls-version', default: '1.2', help: 'oldest TLS version accepted: 1.2 or 1.3' },
  'tls-handshake-timeout': { group: 'tls', field: 'handshakeTimeoutMs', kind: 'ms', default: '10s', help: 'a TLS handshake not finished within this is cut' },
  'tls-handshakes-per-ip': { group: 'tls', field: 'handshakesPerIp', kind: 'count0', default: '8', help: 'TLS handshakes in progress per client address on each TLS listener; more wait their turn, unread, within --tls-handshake-timeout (0 = no limit)' },
  hsts: { group: 'tls', field: 'hsts', kind: 'seconds', default: null, help: 'HTTPS answers carry Strict-Transport-Security: max-age=SECONDS (off by default)' },
  'https-redirect': { group: 'tls', field: 'httpsRedirect', kind: 'switch', default: 'false', help: 'plain HTTP answers GET/HEAD with 308 to the HTTPS port (stats route and /.well-known/acme-challenge/ excepted), other methods 400' },
  'binary-socket': { group: 'listen', field: 'binarySocket', kind: 'string', default: null, help: 'serve MX/1 on this Unix socket path instead of a TCP port' },
  'http-socket': { group: 'listen', field: 'httpSocket', kind: 'string', default: null, help: 'serve HTTP on this Unix socket path instead of a TCP port' },
  'socket-mode': { group: 'listen', field: 'socketMode', kind: 'mode', default: '0660', help: 'permissions of the --http-socket / --binary-socket files (octal)' },
  // The UDP face shares the MX/1 port number unless told otherwise.
  'udp-port': { group: 'listen', field: 'udpPort', kind: 'udp-port', default: { from: 'binary-port' }, help: 'MX/1 over UDP: a port, 0 = any free port, off = disabled (default: the MX/1 port number)' },
  'udp-member-timeout': { group: 'mx', field: 'udpMemberTimeoutMs', kind: 'ms', default: '60s', help: 'a UDP chat member leaves after this long without a datagram' },
  workers: { group: 'cluster', field: 'workers', kind: 'workers', default: '1', help: 'worker processes: N or auto (= cores); 1 = a single process, no primary' },
  'chat-redis': { group: 'chat', field: 'redis', kind: 'redis-url', default: null, help: 'share the chat room with other muxd servers through this Redis (redis://HOST:PORT)' },
  'shutdown-timeout': { group: 'limits', field: 'shutdownTimeoutMs', kind: 'ms', default: '30s', help: 'SIGTERM/SIGINT: longest wait for in-flight work before it is cut' },
  'files-dir': { group: 'files', field: 'dir', kind: 'string', default: './data/files', help: 'MX/1 file store, also served at /files/' },
  'admin-token': { group: 'mx', field: 'adminToken', kind: 'string', default: null, help: 'token for MX/1 ANNOUNCE (unset = announcements forbidden)' },
  parser: { group: 'http', field: 'parser', kind: 'parser', default: 'muxd', help: 'HTTP parser: muxd (ours) or llhttp (the reference, for benchmarks)' },
  'max-connections': { group: 'listen', field: 'maxConnections', kind: 'count', default: '10000', help: 'open connections per listener; more get 503 / ERROR 51' },
  'listen-backlog': { group: 'listen', field: 'backlog', kind: 'count', default: '4096', help: "each listener's accept queue (the kernel clamps it to net.core.somaxconn); a connection arriving to a full queue waits for a TCP retransmission, 200 ms or more" },
  'max-connections-per-ip': { group: 'listen', field: 'maxConnectionsPerIp', kind: 'count0', default: '1024', help: 'open connections per client address on each face (0 = no limit); more get 503 / ERROR 51' },
  'max-request-line': { group: 'http', field: 'maxRequestLine', kind: 'bytes', default: '8KiB', help: 'longest HTTP request line (414 beyond)' },
  'max-head': { group: 'http', field: 'maxHead', kind: 'bytes', default: '16KiB', help: 'largest HTTP request head (431 beyond)' },
  'max-headers': { group: 'http', field: 'maxHeaders', kind: 'count', default: '100', help: 'most HTTP header fields (431 beyond)' },
  'max-body': { group: 'http', field: 'maxBody', kind: 'bytes', default: '1MiB', help: 'largest HTTP request body read and discarded (413 beyond)' },
  'max-pipeline': { group: 'http', field: 'maxPipeline', kind: 'count', default: '64', help: 'pipelined HTTP requests in flight per connection before reading pauses' },
  'head-timeout': { group: 'http', field: 'headTimeoutMs', kind: 'ms', default: '10s', help: 'time to receive a whole HTTP head (408 after)' },
  'idle-timeout': { group: 'http', field: 'idleTimeoutMs', kind: 'ms', default: '30s', help: 'idle keep-alive HTTP connection lifetime' },
  'send-timeout': { group: 'http', field: 'sendTimeoutMs', kind: 'ms', default: '30s', help: 'HTTP: longest stretch a client may take none of our output; longest a request body may take' },
  'max-output': { group: 'limits', field: 'maxOutput', kind: 'bytes', default: '4MiB', help: 'unsent output per connection: past it, no further request or frame is handled until the client reads (MX/1 chat members past it are dropped)' },
  'tcp-notsent-lowat': { group: 'listen', field: 'tcpNotsentLowat', kind: 'bytes0', default: '128KiB', help: 'TCP: unsent bytes the kernel keeps per connection before write() waits for the reader (Linux TCP_NOTSENT_LOWAT; 0 = kernel default, up to tcp_wmem max)' },
  'max-output-total': { group: 'limits', field: 'maxOutputTotal', kind: 'bytes', default: '256MiB', help: 'unsent output of the whole server: past it, file read chunks shrink' },
  'cache-max-file': { group: 'http', field: 'cacheMaxFile', kind: 'bytes', default: '64KiB', help: 'files up to this size are served from memory' },
  'cache-control-html': { group: 'http', field: 'cacheControlHtml', kind: 'string', default: 'no-cache', help: 'Cache-Control for HTML' },
  'cache-control-immutable': { group: 'http', field: 'cacheControlImmutable', kind: 'string', default: 'public, max-age=31536000, immutable', help: 'Cache-Control for fingerprinted names (app.3f9a2c.js)' },
  'cache-control-other': { group: 'http', field: 'cacheControlOther', kind: 'string', default: 'public, max-age=300', help: 'Cache-Control for everything else' },
  'stats-path': { group: 'http', field: 'statsPath', kind: 'stats-path', default: '/.well-known/muxd/stats', help: 'HTTP path of the live metrics JSON shown on the landing page ("off" disables it)' },
  'ws-path': { group: 'ws', field: 'path', kind: 'ws-path', default: '/.well-known/muxd/mx', help: 'HTTP path where MX/1 over WebSocket is upgraded ("off" disables it)' },
  'ws-origins': { group: 'ws', field: 'origins', kind: 'origins', default: null, help: 'Origins besides our own that may open the WebSocket (comma-separated, or *); requests without Origin are always allowed (default: own origin only)' },
  'ws-ping-interval': { group: 'ws', field: 'pingIntervalMs', kind: 'ms0', default: '30s', help: 'WebSocket ping interval; a peer silent for two intervals is closed (0 = no pings, no idle close)' },
  'access-log': { group: 'http', field: 'accessLog', kind: 'string', default: null, help: 'Combined Log Format access log: a file, or - for stdout (off by default)' },
  'max-frame': { group: 'mx', field: 'maxFrame', kind: 'frame-size', default: '1MiB', help: 'largest MX/1 frame payload, 64KiB..4GiB-1 (ERROR 2 and close beyond)' },
  'max-upload': { group: 'files', field: 'maxUpload', kind: 'bytes', default: '1GiB', help: 'largest MX/1 upload (ERROR 22 beyond)' },
  'max-transfers': { group: 'files', field: 'maxTransfers', kind: 'count', default: '16', help: 'concurrent MX/1 uploads and downloads per connection (ERROR 51 beyond)' },
  'max-transfers-total': { group: 'files', field: 'maxTransfersTotal', kind: 'count', default: '256', help: 'concurrent MX/1 uploads and downloads of the whole server (ERROR 51 beyond)' },
  'transfer-timeout': { group: 'files', field: 'transferTimeoutMs', kind: 'ms', default: '30s', help: 'an MX/1 transfer without progress for this long is aborted (ERROR 27)' },
  'upload-token': { group: 'files', field: 'uploadToken', kind: 'string', default: null, help: 'MX/1 PUT needs AUTH with this token (unset = uploads only from loopback and Unix-socket peers)' },
  'binary-hello-timeout': { group: 'mx', field: 'helloTimeoutMs', kind: 'ms', default: '10s', help: 'a new MX/1 connection must send a whole first frame within this' },
  'binary-idle-timeout': { group: 'mx', field: 'idleTimeoutMs', kind: 'ms', default: '5m', help: 'idle MX/1 connection lifetime' },
} as const satisfies Record<string, FlagSpec>;

export type FlagName = keyof typeof FLAGS;
type Spec<F extends FlagName> = (typeof FLAGS)[F];

/** A row's value: its kind's type, or null as well when it has no default. */
type ValueOf<S extends FlagSpec> = S['default'] extends null ? ReturnType<(typeof KINDS)[S['kind']]> | null : ReturnType<(typeof KINDS)[S['kind']]>;

/** One group: every row naming it, under its field name. */
type GroupOptions<G extends Group> = { [F in FlagName as Spec<F>['group'] extends G ? Spec<F>['field'] : never]: ValueOf<Spec<F>> };

/** Everything `muxd serve` was told, grouped by concern (see the table above for each field). */
export type ServeOptions = { [G in Group]: Readonly<GroupOptions<G>> };

/** Environment variables, as process.env holds them; passed in, so tests give their own. */
export type Environment = Readonly<Record<string, string | undefined>>;

/** MUXD_HTTP_PORT for --http-port. */
export function envName(flag: string): string {
  return 'MUXD_' + flag.toUpperCase().replace(/-/g, '_');
}

/** Each flag with its group and field, in --help order (for tests and documentation). */
export function flagTable(): { flag: FlagName; group: Group; field: string; env: string; default: FlagSpec['default']; kind: Kind }[] {
  return (Object.entries(FLAGS) as [FlagName, FlagSpec][]).map(([flag, s]) => ({ flag, group: s.group, field: s.field, env: envName(flag), default: s.default, kind: s.kind }));
}

export function serveUsage(): string {
  const lines = ['Usage: muxd serve [flags]', '', 'Every flag can also be set by its environment variable; a flag wins over the environment.', ''];
  for (const [flag, spec] of Object.entries(FLAGS) as [FlagName, FlagSpec][]) {
    // A switch (no value) is off unless given: no default to show.
    const def = typeof spec.default === 'string' && spec.kind !== 'switch' ? ` (default ${spec.default})` : '';
    lines.push(`  --${flag.padEnd(24)} ${spec.help}${def}`);
    lines.push(`  ${''.padEnd(26)} env ${envName(flag)}`);
  }
  return lines.join('\n');
}

/**
 * Parses flags, then env vars, then defaults, in table order. Throws UsageError on anything
 * unknown or invalid (the first bad value in table order). `env` is given by the caller: the
 * CLI passes process.env, tests their own.
 */
export function parseServeOptions(argv: string[], env: Environment, cwd: string = process.cwd()): ServeOptions | 'help' {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = { help: { type: 'boolean', short: 'h' } };
  for (const [flag, spec] of Object.entries(FLAGS) as [FlagName, FlagSpec][]) options[flag] = { type: spec.kind === 'switch' ? 'boolean' : 'string' };
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help === true) return 'help';
  const rawText = (flag: FlagName): string | null => {
    const fromFlag = values[flag];
    if (typeof fromFlag === 'string') return fromFlag;
    if (fromFlag === true) return 'true';
    const fromEnv = env[envName(flag)];
    if (fromEnv !== undefined) return fromEnv;
    const def: FlagSpec['default'] = FLAGS[flag].default;
    return def === null || typeof def === 'string' ? def : rawText(def.from as FlagName);
  };
  const grouped: Record<Group, Record<string, unknown>> = { listen: {}, limits: {}, http: {}, ws: {}, mx: {}, files: {}, chat: {}, cluster: {}, tls: {} };
  for (const [flag, spec] of Object.entries(FLAGS) as [FlagName, FlagSpec][]) {
    const raw = rawText(flag);
    const complaint: Complaint = {
      expected: (what) => {
        throw new UsageError(`--${flag}: expected ${what}, got "${raw}"`);
      },
      say: (text) => {
        throw new UsageError(`--${flag}: ${text}`);
      },
    };
    grouped[spec.group][spec.field] = raw === null ? null : KINDS[spec.kind](raw, complaint);
  }
  // --root given nowhere: ./public where the working directory has one, else the shipped site
  // (an installed muxd run from any folder still serves something).
  if (typeof values.root !== 'string' && env[envName('root')] === undefined) grouped.http.root = defaultRoot(cwd);
  // The one cast: each value came from its row's kind, which is what ServeOptions says of it.
  return grouped as ServeOptions;
}
