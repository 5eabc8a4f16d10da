// `muxd serve` options with an injected environment: the defaults, flag over env over default,
// every kind's validation message, and where each flag lands in the grouped options.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { flagTable, parseServeOptions, serveUsage, UsageError, type Environment, type ServeOptions } from '../../src/server/options.js';

function parse(argv: string[], env: Environment = {}): ServeOptions {
  const o = parseServeOptions(argv, env);
  assert.notEqual(o, 'help');
  return o as ServeOptions;
}

/** The UsageError message for these flags (fails if they parse). */
function usageError(argv: string[], env: Environment = {}): string {
  try {
    parseServeOptions(argv, env);
  } catch (err) {
    assert.ok(err instanceof UsageError, String(err));
    return err.message;
  }
  assert.fail(`${argv.join(' ')} ${JSON.stringify(env)} parsed`);
}

test('defaults, grouped by concern, with an empty environment', () => {
  assert.deepEqual(parse([]), {
    listen: {
      host: '127.0.0.1',
      httpPort: 8080,
      binaryPort: 9000,
      binarySocket: null,
      httpSocket: null,
      socketMode: 0o660,
      udpPort: 9000,
      maxConnections: 10000,
      backlog: 4096,
      maxConnectionsPerIp: 1024,
      tcpNotsentLowat: 128 * 1024,
    },
    limits: { shutdownTimeoutMs: 30_000, maxOutput: 4 << 20, maxOutputTotal: 256 << 20 },
    http: {
      root: './public',
      parser: 'muxd',
      maxRequestLine: 8 * 1024,
      maxHead: 16 * 1024,
      maxHeaders: 100,
      maxBody: 1 << 20,
      maxPipeline: 64,
      headTimeoutMs: 10_000,
      idleTimeoutMs: 30_000,
      sendTimeoutMs: 30_000,
      cacheMaxFile: 64 * 1024,
      cacheControlHtml: 'no-cache',
      cacheControlImmutable: 'public, max-age=31536000, immutable',
      cacheControlOther: 'public, max-age=300',
      statsPath: '/.well-known/muxd/stats',
      accessLog: null,
    },
    ws: { path: '/.well-known/muxd/mx', origins: null, pingIntervalMs: 30_000 },
    mx: { udpMemberTimeoutMs: 60_000, adminToken: null, maxFrame: 1 << 20, helloTimeoutMs: 10_000, idleTimeoutMs: 300_000 },
    files: { dir: './data/files', maxUpload: 1 << 30, maxTransfers: 16, maxTransfersTotal: 256, transferTimeoutMs: 30_000, uploadToken: null },
    chat: { redis: null },
    cluster: { workers: 1 },
    tls: { cert: null, key: null, httpsPort: 8443, binaryTlsPort: 9443, minVersion: 'TLSv1.2', handshakeTimeoutMs: 10_000, handshakesPerIp: 8, hsts: null, httpsRedirect: false },
  });
});

test('TLS flags and their env vars: files, ports, version, timeout, HSTS, the redirect switch; plain listeners off', () => {
  const o = parse(['--tls-cert', 'c.pem', '--tls-key', 'k.pem', '--https-port', '443', '--binary-tls-port', '0', '--tls-min-version', '1.3', '--tls-handshake-timeout', '2s', '--tls-handshakes-per-ip', '2', '--hsts', '63072000', '--https-redirect', '--http-port', 'off', '--binary-port', 'off']);
  assert.deepEqual(o.tls, { cert: 'c.pem', key: 'k.pem', httpsPort: 443, binaryTlsPort: 0, minVersion: 'TLSv1.3', handshakeTimeoutMs: 2000, handshakesPerIp: 2, hsts: 63072000, httpsRedirect: true });
  assert.equal(o.listen.httpPort, null);
  assert.equal(o.listen.binaryPort, null);
  assert.equal(o.listen.udpPort, null, 'UDP takes the MX/1 port number by default: off with it');
  assert.equal(parse(['--binary-port', 'off', '--udp-port', '9000']).listen.udpPort, 9000);
  const env = parse([], { MUXD_TLS_CERT: 'a.pem', MUXD_TLS_KEY: 'b.pem', MUXD_HTTPS_PORT: '1443', MUXD_BINARY_TLS_PORT: '2443', MUXD_TLS_MIN_VERSION: '1.3', MUXD_TLS_HANDSHAKE_TIMEOUT: '500ms', MUXD_TLS_HANDSHAKES_PER_IP: '0', MUXD_HSTS: '0', MUXD_HTTPS_REDIRECT: '1', MUXD_HTTP_PORT: 'off', MUXD_BINARY_PORT: 'off' });
  assert.deepEqual(env.tls, { cert: 'a.pem', key: 'b.pem', httpsPort: 1443, binaryTlsPort: 2443, minVersion: 'TLSv1.3', handshakeTimeoutMs: 500, handshakesPerIp: 0, hsts: 0, httpsRedirect: true });
  assert.equal(env.listen.httpPort, null);
  assert.equal(parse([], { MUXD_HTTPS_REDIRECT: 'false' }).tls.httpsRedirect, false);
  assert.equal(usageError([], { MUXD_HTTPS_REDIRECT: 'maybe' }), '--https-redirect: expected true or false, got "maybe"');
  assert.match(usageError(['--https-redirect=yes']), /--https-redirect/);
});

test('the environment sets a value, a flag wins over it, and process.env is not read', () => {
  const key = 'MUXD_HTTP_PORT';
  const saved = process.env[key];
  process.env[key] = '1111';
  try {
    assert.equal(parse([]).listen.httpPort, 8080, 'process.env is not the default environment');
    assert.equal(parse([], { MUXD_HTTP_PORT: '2222' }).listen.httpPort, 2222);
    assert.equal(parse(['--http-port', '3333'], { MUXD_HTTP_PORT: '2222' }).listen.httpPort, 3333);
    assert.equal(parse(['--http-port=4444']).listen.httpPort, 4444);
  } finally {
    if (saved === undefined) delete process.env[key];
    else process.env[key] = saved;
  }
  const env = { MUXD_MAX_BODY: '2MiB', MUXD_ADMIN_TOKEN: 'secret', MUXD_ACCESS_LOG: '-' };
  const o = parse(['--admin-token', 'flag'], env);
  assert.equal(o.http.maxBody, 2 << 20);
  assert.equal(o.mx.adminToken, 'flag');
  assert.equal(o.http.accessLog, '-');
  // A bad value in the environment is reported under its flag's name.
  assert.equal(usageError([], { MUXD_MAX_BODY: 'lots' }), '--max-body: expected a size such as 65536, 64KiB or 1MiB, got "lots"');
  // A flag wins even over a bad env value, which is then never parsed.
  assert.equal(parse(['--max-body', '1k'], { MUXD_MAX_BODY: 'lots' }).http.maxBody, 1024);
});

test('UDP takes the MX/1 port number unless told otherwise; off turns it off', () => {
  assert.equal(parse(['--binary-port', '1234']).listen.udpPort, 1234);
  assert.equal(parse([], { MUXD_BINARY_PORT: '0' }).listen.udpPort, 0);
  assert.equal(parse(['--binary-port', '1234', '--udp-port', '99']).listen.udpPort, 99);
  assert.equal(parse(['--udp-port', 'off']).listen.udpPort, null);
  assert.equal(parse([], { MUXD_UDP_PORT: 'off' }).listen.udpPort, null);
  // The MX/1 port's own validation comes first, under its own flag.
  assert.match(usageError(['--binary-port', 'x']), /^--binary-port: /);
});

test('values of each kind that parse', () => {
  const o = parse([
    ...['--socket-mode', '600', '--max-connections-per-ip', '0', '--tcp-notsent-lowat', '0', '--max-frame', '64KiB', '--parser', 'llhttp'],
    ...['--head-timeout', '500ms', '--idle-timeout', '5', '--binary-idle-timeout', '2m', '--max-upload', '3 GB', '--stats-path', 'off', '--chat-redis', 'rediss://h:1'],
  ]);
  assert.equal(o.listen.socketMode, 0o600);
  assert.equal(o.listen.maxConnectionsPerIp, 0);
  assert.equal(o.listen.tcpNotsentLowat, 0);
  assert.equal(o.mx.maxFrame, 65536);
  assert.equal(o.http.parser, 'llhttp');
  assert.equal(o.http.headTimeoutMs, 500);
  assert.equal(o.http.idleTimeoutMs, 5);
  assert.equal(o.mx.idleTimeoutMs, 120_000);
  assert.equal(o.files.maxUpload, 3 * 2 ** 30);
  assert.equal(o.http.statsPath, null);
  assert.equal(o.chat.redis, 'rediss://h:1');
  assert.equal(parse(['--workers', 'auto']).cluster.workers, availableParallelism());
  assert.equal(parse(['--workers', '256']).cluster.workers, 256);
  // An empty MUXD_CHAT_REDIS is no Redis.
  assert.equal(parse([], { MUXD_CHAT_REDIS: '' }).chat.redis, null);
});

// One row per kind and way to be wrong: the exact line the operator reads.
const invalid: { argv: string[]; message: string }[] = [
  { argv: ['--http-port', '65536'], message: '--http-port: expected a port number 0..65535 or "off", got "65536"' },
  { argv: ['--binary-port', 'abc'], message: '--binary-port: expected a port number 0..65535 or "off", got "abc"' },
  { argv: ['--https-port', 'off'], message: '--https-port: expected a port number 0..65535, got "off"' },
  { argv: ['--tls-min-version', '1.1'], message: '--tls-min-version: expected 1.2 or 1.3, got "1.1"' },
  { argv: ['--hsts', '1y'], message: '--hsts: expected a whole number of seconds, got "1y"' },
  { argv: ['--tls-handshake-timeout', '0'], message: '--tls-handshake-timeout: expected a duration of at least 1 ms, got "0"' },
  { argv: ['--tls-handshakes-per-ip', 'eight'], message: '--tls-handshakes-per-ip: expected a whole number (0 = no limit), got "eight"' },
  { argv: ['--udp-port', 'on'], message: '--udp-port: expected a port number 0..65535 or "off", got "on"' },
  { argv: ['--max-connections', '0'], message: '--max-connections: expected a whole number of at least 1, got "0"' },
  { argv: ['--max-connections-per-ip=-1'], message: '--max-connections-per-ip: expected a whole number (0 = no limit), got "-1"' },
  { argv: ['--socket-mode', '0999'], message: '--socket-mode: expected octal permissions such as 0660, got "0999"' },
  { argv: ['--workers', '0'], message: '--workers: expected a number of workers 1..256 or "auto", got "0"' },
  { argv: ['--workers', '257'], message: '--workers: expected a number of workers 1..256 or "auto", got "257"' },
  { argv: ['--parser', 'node'], message: '--parser: expected muxd or llhttp, got "node"' },
  { argv: ['--max-body', '1.5MiB'], message: '--max-body: expected a size such as 65536, 64KiB or 1MiB, got "1.5MiB"' },
  { argv: ['--max-body', '0'], message: '--max-body: expected a size of at least 1 byte, got "0"' },
  { argv: ['--max-head', '4TiB'], message: '--max-head: expected a size such as 65536, 64KiB or 1MiB, got "4TiB"' },
  { argv: ['--tcp-notsent-lowat', 'lots'], message: '--tcp-notsent-lowat: expected a size such as 65536, 64KiB or 1MiB, got "lots"' },
  { argv: ['--tcp-notsent-lowat', '99999999999999999'], message: '--tcp-notsent-lowat: expected a size (0 = off), got "99999999999999999"' },
  { argv: ['--max-frame', '63KiB'], message: '--max-frame: must be between 64KiB and 4GiB-1, got 64512 bytes' },
  { argv: ['--max-frame', '4GiB'], message: '--max-frame: must be between 64KiB and 4GiB-1, got 4294967296 bytes' },
  { argv: ['--max-frame', 'big'], message: '--max-frame: expected a size such as 65536, 64KiB or 1MiB, got "big"' },
  { argv: ['--head-timeout', '10h'], message: '--head-timeout: expected a duration such as 500ms, 10s or 5m, got "10h"' },
  { argv: ['--shutdown-timeout', '0s'], message: '--shutdown-timeout: expected a duration of at least 1 ms, got "0s"' },
  { argv: ['--stats-path', 'stats'], message: '--stats-path: expected a path such as /stats.json or "off", got "stats"' },
  { argv: ['--stats-path', '/a?b'], message: '--stats-path: expected a path such as /stats.json or "off", got "/a?b"' },
  { argv: ['--ws-path', 'mx'], message: '--ws-path: expected a path such as /.well-known/muxd/mx or "off", got "mx"' },
  { argv: ['--ws-path', '/mx?x=1'], message: '--ws-path: expected a path such as /.well-known/muxd/mx or "off", got "/mx?x=1"' },
  { argv: ['--ws-origins', 'app.example'], message: '--ws-origins: expected comma-separated origins such as https://app.example:8443, or *, got "app.example"' },
  { argv: ['--ws-origins', 'https://a.example,https://b.example/path'], message: '--ws-origins: expected comma-separated origins such as https://app.example:8443, or *, got "https://a.example,https://b.example/path"' },
  { argv: ['--ws-origins', 'null'], message: '--ws-origins: expected comma-separated origins such as https://app.example:8443, or *, got "null"' },
  { argv: ['--ws-ping-interval=-1s'], message: '--ws-ping-interval: expected a duration such as 500ms, 30s or 0 (off), got "-1s"' },
  { argv: ['--ws-ping-interval', '1h'], message: '--ws-ping-interval: expected a duration such as 500ms, 30s or 0 (off), got "1h"' },
  { argv: ['--chat-redis', 'http://x'], message: '--chat-redis: expected a URL such as redis://127.0.0.1:6379, got "http://x"' },
];

for (const c of invalid) {
  test(`invalid: ${c.argv.join(' ')}`, () => {
    assert.equal(usageError(c.argv), c.message);
  });
}

test('the WebSocket flags: --ws-path (off), --ws-origins (a list or *), --ws-ping-interval (0 = off), and their env vars', () => {
  const o = parse(['--ws-path', '/mx', '--ws-origins', ' https://app.example , http://localhost:3000 ', '--ws-ping-interval', '0']);
  assert.equal(o.ws.path, '/mx');
  assert.deepEqual(o.ws.origins, ['https://app.example', 'http://localhost:3000']);
  assert.equal(o.ws.pingIntervalMs, 0);
  assert.equal(parse(['--ws-path', 'off']).ws.path, null);
  assert.equal(parse(['--ws-origins', '*']).ws.origins, '*');
  assert.equal(parse(['--ws-ping-interval', '250ms']).ws.pingIntervalMs, 250);
  const env = parse([], { MUXD_WS_PATH: 'off', MUXD_WS_ORIGINS: '*', MUXD_WS_PING_INTERVAL: '5s' });
  assert.deepEqual(env.ws, { path: null, origins: '*', pingIntervalMs: 5000 });
  assert.equal(parse(['--ws-path', '/a'], { MUXD_WS_PATH: '/b' }).ws.path, '/a');
  assert.match(serveUsage(), /--ws-path .*\(default \/\.well-known\/muxd\/mx\)\n\s+env MUXD_WS_PATH/);
  assert.match(serveUsage(), /--ws-origins .*\n\s+env MUXD_WS_ORIGINS/);
  assert.match(serveUsage(), /--ws-ping-interval .*\(default 30s\)\n\s+env MUXD_WS_PING_INTERVAL/);
});

test('an unknown flag, a stray argument and a missing value are usage errors; --help is help', () => {
  assert.match(usageError(['--no-such-flag']), /no-such-flag/);
  assert.match(usageError(['public']), /public/);
  assert.match(usageError(['--http-port']), /--http-port/);
  assert.equal(parseServeOptions(['--help'], {}), 'help');
  assert.equal(parseServeOptions(['-h', '--http-port', 'bad'], {}), 'help');
});

test('every flag has one group and field, and lands there', () => {
  const rows = flagTable();
  const places = rows.map((r) => `${r.group}.${r.field}`);
  assert.equal(new Set(places).size, rows.length, 'two flags share a field');
  const flags = new Set(rows.map((r) => r.flag));
  for (const r of rows) if (typeof r.default === 'object' && r.default !== null) assert.ok(flags.has(r.default.from as never), `${r.flag}: default from ${r.default.from}`);
  const defaults = parse([]) as unknown as Record<string, Record<string, unknown>>;
  const grouped = Object.entries(defaults).flatMap(([g, fields]) => Object.keys(fields).map((f) => `${g}.${f}`));
  assert.deepEqual(grouped.sort(), [...places].sort(), 'the options hold exactly the table');
  // A flag's value lands in its own place and nowhere else: give every string flag a marker.
  const strings = rows.filter((r) => r.kind === 'string');
  const marked = parse(strings.flatMap((r) => [`--${r.flag}`, `mark-${r.flag}`])) as unknown as Record<string, Record<string, unknown>>;
  for (const r of strings) assert.equal(marked[r.group]![r.field], `mark-${r.flag}`, r.flag);
  assert.deepEqual(Object.keys(defaults), ['listen', 'limits', 'http', 'ws', 'mx', 'files', 'chat', 'cluster', 'tls']);
});

test('--help lists every flag of the table in order, with its env var and default', () => {
  const help = serveUsage();
  const rows = flagTable();
  const listed = [...help.matchAll(/^ {2}--(\S+)/gm)].map((m) => m[1]);
  assert.deepEqual(listed, rows.map((r) => r.flag));
  for (const r of rows) assert.match(help, new RegExp(`^ +env ${r.env}$`, 'm'));
  assert.match(help, /^ {2}--http-port {16}HTTP port \(0 = any free port, off = no plain HTTP listener\) \(default 8080\)$/m);
  assert.match(help, /^ {2}--https-port {15}HTTPS port, with --tls-cert \(0 = any free port\) \(default 8443\)$/m);
  assert.match(help, /^ {2}--tls-handshakes-per-ip {4}TLS handshakes in progress per client address .*\(0 = no limit\) \(default 8\)$/m);
  // A switch takes no value and shows no default.
  assert.match(help, /^ {2}--https-redirect {11}plain HTTP answers GET\/HEAD with 308 .*other methods 400$/m);
  // A default taken from another flag is explained in the help text, not printed as a value.
  assert.match(help, /^ {2}--udp-port {17}MX\/1 over UDP: .*\(default: the MX\/1 port number\)$/m);
});

test('--root given nowhere: ./public where the working directory has one, else the site shipped with muxd', async () => {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { SHIPPED_ROOT } = await import('../../src/server/default-root.js');
  const empty = mkdtempSync(path.join(tmpdir(), 'muxd-root-'));
  try {
    const fromEmpty = parseServeOptions([], {}, empty);
    assert.ok(fromEmpty !== 'help');
    assert.equal(fromEmpty.http.root, SHIPPED_ROOT);
    const flagged = parseServeOptions(['--root', './site'], {}, empty);
    assert.ok(flagged !== 'help');
    assert.equal(flagged.http.root, './site', 'a flag always wins');
    const fromEnv = parseServeOptions([], { MUXD_ROOT: './env-site' }, empty);
    assert.ok(fromEnv !== 'help');
    assert.equal(fromEnv.http.root, './env-site', 'and so does the environment');
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
});
