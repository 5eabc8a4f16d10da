// The MX/1 client commands of `muxd`: ping, stats, chat, put, get, ls, announce.
// Exit status: 0 success, 1 a protocol or connection error, 2 a bad command line.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { LocalCode, MuxError, type ConnectOptions, type TlsOptions } from '../client/index.js';
import { parseWsUrl } from '../client/dial.js';
import { DEFAULT_MAX_PAYLOAD } from '../wire/protocol.js';
import { MAX_DATAGRAM_PAYLOAD } from '../wire/udp.js';
import { runChat } from './client-chat.js';
import { boolFlag, intFlag, stringFlag, UsageError, withChatClient, withClient, type ClientIO, type CommandContext } from './client-context.js';
import { describeError, humanSize } from './client-format.js';
import { formatStats } from './client-stats.js';
import { runGet, runPut } from './client-transfer.js';

/** Largest reply frame the CLI accepts (see where it is used). */
const CLI_MAX_RECEIVE_FRAME = 16 * 1024 * 1024;

export type { ClientIO } from './client-context.js';

type Options = NonNullable<ParseArgsConfig['options']>;

interface CommandSpec {
  usage: string;
  options: Options;
  /** [min, max] positional arguments. */
  positionals: [number, number];
  run(ctx: CommandContext): Promise<number>;
}

const COMMON: Options = {
  host: { type: 'string' },
  port: { type: 'string' },
  socket: { type: 'string' },
  timeout: { type: 'string' },
  url: { type: 'string' },
  tls: { type: 'boolean' },
  ca: { type: 'string' },
  servername: { type: 'string' },
  insecure: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

const COMMON_USAGE = `Connection flags (all commands):
  --host H        server host (env MUXD_HOST, default 127.0.0.1)
  --port N        MX/1 port (env MUXD_BINARY_PORT, default 9000)
  --socket PATH   connect to a Unix socket instead
  --udp           ping, stats, chat: MX/1 over UDP (port: --port, else env MUXD_UDP_PORT,
                  else MUXD_BINARY_PORT, else 9000)
  --url URL       MX/1 over WebSocket instead: ws://HOST:PORT/.well-known/muxd/mx, or wss://
                  for WebSocket over TLS (muxd's HTTP or HTTPS port); not with --host/--port/--socket
  --tls           MX/1 over TLS (port: --port, else env MUXD_BINARY_TLS_PORT, else 9443)
  --ca FILE       trust the CA certificates in FILE (PEM) for --tls or wss:// (default: the system's)
  --servername N  the name the server's certificate must carry, sent as SNI (default: the host)
  --insecure      do not verify the server's certificate (prints a warning each time; tests only)
  --timeout MS    per-request timeout; for put/get, per stretch without progress (default 10000)
UDP (--udp) is always plaintext: it does not combine with --url or --tls.`;

const COMMANDS: Record<string, CommandSpec> = {
  ping: {
    usage: 'muxd ping [--count N] [--size BYTES] [--interval MS] [--udp]',
    options: { count: { type: 'string', short: 'c' }, size: { type: 'string', short: 's' }, interval: { type: 'string', short: 'i' }, udp: { type: 'boolean' } },
    positionals: [0, 0],
    run: runPing,
  },
  stats: {
    usage: 'muxd stats [--json] [--udp]',
    options: { json: { type: 'boolean' }, udp: { type: 'boolean' } },
    positionals: [0, 0],
    run: runStats,
  },
  chat: {
    usage: 'muxd chat --name NAME [--udp]',
    options: { name: { type: 'string', short: 'n' }, udp: { type: 'boolean' } },
    positionals: [0, 0],
    run: runChat,
  },
  put: {
    usage: 'muxd put FILE [--as NAME] [--token TOKEN]   (token also from env MUXD_UPLOAD_TOKEN)',
    options: { as: { type: 'string' }, token: { type: 'string' } },
    positionals: [1, 1],
    run: runPut,
  },
  get: {
    usage: 'muxd get NAME [-o FILE] [--resume] [--force]',
    options: { output: { type: 'string', short: 'o' }, resume: { type: 'boolean' }, force: { type: 'boolean', short: 'f' } },
    positionals: [1, 1],
    run: runGet,
  },
  ls: {
    usage: 'muxd ls [--json]',
    options: { json: { type: 'boolean' } },
    positionals: [0, 0],
    run: runLs,
  },
  announce: {
    usage: 'muxd announce TEXT... [--token TOKEN]   (token also from env MUXD_ADMIN_TOKEN)',
    options: { token: { type: 'string' } },
    positionals: [1, Infinity],
    run: runAnnounce,
  },
};

function processIO(): ClientIO {
  return { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() };
}

/** Runs `muxd <command> ...argv` and returns the exit status. `io` defaults to the process's own streams. */
export async function runClientCommand(command: string, argv: string[], io: ClientIO = processIO()): Promise<number> {
  const spec = COMMANDS[command];
  if (spec === undefined) {
    io.stderr.write(`muxd: unknown client command "${command}"\n`);
    return 2;
  }
  const usage = `Usage: ${spec.usage}\n${COMMON_USAGE}\n`;
  let ctx: CommandContext;
  try {
    const parsed = parseCommandLine(spec, argv, io);
    if (parsed === 'help') {
      io.stdout.write(usage);
      return 0;
    }
    ctx = parsed;
  } catch (err) {
    if (err instanceof UsageError || isParseArgsError(err)) {
      io.stderr.write(`muxd ${command}: ${(err as Error).message}\n${usage}`);
      return 2;
    }
    throw err;
  }
  try {
    return await spec.run(ctx);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`muxd ${command}: ${err.message}\n${usage}`);
      return 2;
    }
    io.stderr.write(describeError(err, ctx.where) + '\n');
    return 1;
  }
}

function isParseArgsError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS');
}

function parseCommandLine(spec: CommandSpec, argv: string[], io: ClientIO): CommandContext | 'help' {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { ...COMMON, ...spec.options },
    strict: true,
    allowPositionals: spec.positionals[1] > 0,
  });
  if (values.help === true) return 'help';
  const [min, max] = spec.positionals;
  if (positionals.length < min) throw new UsageError('missing argument');
  if (positionals.length > max) throw new UsageError(`unexpected argument "${positionals[max]}"`);

  const ctx: CommandContext = { io, values, positionals, conn: {}, udp: values.udp === true, where: '', via: '' };
  const timeoutMs = intFlag(stringFlag(ctx, 'timeout'), 'timeout', 1, 24 * 3600 * 1000) ?? 10_000;
  const socket = stringFlag(ctx, 'socket');
  // Replies are at most the server's --max-frame (1 MiB by default); accept servers configured
  // higher, within a bound that still protects us from a hostile length.
  const conn: ConnectOptions = { timeoutMs, maxFrame: CLI_MAX_RECEIVE_FRAME };
  const url = stringFlag(ctx, 'url');
  const wantTls = boolFlag(ctx, 'tls');
  if (ctx.udp && (url !== undefined || wantTls)) throw new UsageError(`--udp is plaintext only: it does not go with ${url !== undefined ? '--url' : '--tls'}`);
  let secure = wantTls;
  if (url !== undefined) {
    for (const other of ['host', 'port', 'socket']) {
      if (ctx.values[other] !== undefined) throw new UsageError(`--url and --${other} do not go together: the url says where to connect`);
    }
    let parsed: ReturnType<typeof parseWsUrl>;
    try {
      parsed = parseWsUrl(url);
    } catch (err) {
      throw new UsageError(`--url: ${(err as Error).message}`);
    }
    if (wantTls && !parsed.secure) throw new UsageError('--tls with a ws:// url: use wss:// for WebSocket over TLS');
    secure = parsed.secure;
    conn.url = url;
    ctx.where = url;
    ctx.via = secure ? ' over WebSocket/TLS' : ' over WebSocket';
  } else if (wantTls) {
    if (socket !== undefined) throw new UsageError('--tls and --socket do not go together: TLS needs --host and --port');
    ctx.via = ' over TLS';
  }
  const tlsOpts = tlsFlags(ctx, secure);
  if (tlsOpts !== null) conn.tls = tlsOpts;
  if (url !== undefined) {
    // where and the url are set above.
  } else if (socket !== undefined) {
    if (socket === '') throw new UsageError('--socket needs a path');
    if (ctx.udp) throw new UsageError('--udp and --socket do not go together: UDP needs --host and --port');
    conn.path = socket;
    ctx.where = socket;
  } else {
    const host = stringFlag(ctx, 'host') ?? (io.env.MUXD_HOST || '127.0.0.1');
    // The UDP face listens on the MX/1 port number unless the server was told otherwise.
    const portText = stringFlag(ctx, 'port') ??
      (wantTls ? io.env.MUXD_BINARY_TLS_PORT || '9443' : ((ctx.udp ? io.env.MUXD_UDP_PORT : undefined) || io.env.MUXD_BINARY_PORT || '9000'));
    const port = intFlag(portText, 'port', 1, 65535)!;
    conn.host = host;
    conn.port = port;
    ctx.where = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  }
  ctx.conn = conn;
  return ctx;
}

/**
 * --ca, --servername and --insecure as TLS options (null without TLS; then they are a usage
 * error). --insecure warns on stderr every time: a connection nobody verified can be read and
 * changed by anyone on the path.
 */
function tlsFlags(ctx: CommandContext, secure: boolean): TlsOptions | null {
  const ca = stringFlag(ctx, 'ca');
  const servername = stringFlag(ctx, 'servername');
  const insecure = boolFlag(ctx, 'insecure');
  if (!secure) {
    const given = ca !== undefined ? '--ca' : servername !== undefined ? '--servername' : insecure ? '--insecure' : null;
    if (given !== null) throw new UsageError(`${given} needs --tls or a wss:// --url`);
    return null;
  }
  const opts: TlsOptions = {};
  if (ca !== undefined) {
    if (ca === '') throw new UsageError('--ca needs a file');
    try {
      opts.ca = readFileSync(ca);
    } catch (err) {
      throw new UsageError(`--ca ${ca}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
    }
  }
  if (servername !== undefined) {
    if (!/^[A-Za-z0-9.-]{1,253}$/.test(servername)) throw new UsageError(`--servername must be a DNS name, got "${servername}"`);
    opts.servername = servername;
  }
  if (insecure) {
    if (ca !== undefined) throw new UsageError('--insecure and --ca do not go together: --insecure verifies nothing');
    opts.rejectUnauthorized = false;
    ctx.io.stderr.write("muxd: warning: --insecure: the server's certificate is not verified; anyone on the path can read and change this connection\n");
  }
  return opts;
}

// --- ping --------------------------------------------------------------------------------

async function runPing(ctx: CommandContext): Promise<number> {
  const count = intFlag(stringFlag(ctx, 'count'), 'count', 1, 1_000_000) ?? 4;
  const size = intFlag(stringFlag(ctx, 'size'), 'size', 0, ctx.udp ? MAX_DATAGRAM_PAYLOAD : DEFAULT_MAX_PAYLOAD) ?? 56;
  const interval = intFlag(stringFlag(ctx, 'interval'), 'interval', 0, 3_600_000) ?? 1000;
  const out = ctx.io.stdout;
  // Over UDP each ping is one probe, as ping(8)'s: a lost one is reported, not resent.
  return withChatClient(ctx, async (client) => {
    const payload = randomBytes(size);
    out.write(`PING ${ctx.where} (MX/1${ctx.udp ? ' over UDP' : ctx.via}): ${size} bytes\n`);
    const rtts: number[] = [];
    const began = performance.now();
    for (let seq = 1; seq <= count; seq++) {
      const t0 = performance.now();
      try {
        const reply = await client.ping(payload);
        const ms = performance.now() - t0;
        if (reply.equals(payload)) {
          rtts.push(ms);
          out.write(`${reply.length} bytes from ${ctx.where}: seq=${seq} time=${ms.toFixed(3)} ms\n`);
        } else {
          out.write(`seq=${seq}: reply differs from the payload sent\n`);
        }
      } catch (err) {
        if (!(err instanceof MuxError) || err.code !== LocalCode.TIMEOUT) throw err;
        out.write(`seq=${seq}: timeout\n`);
      }
      if (seq < count && interval > 0) await sleep(interval);
    }
    const elapsed = performance.now() - began;
    const lost = count - rtts.length;
    out.write(`--- ${ctx.where} ping statistics ---\n`);
    out.write(`${count} pings transmitted, ${rtts.length} received, ${((lost / count) * 100).toFixed(0)}% loss, time ${elapsed.toFixed(0)} ms\n`);
    if (rtts.length > 0) {
      const min = Math.min(...rtts);
      const max = Math.max(...rtts);
      const avg = rtts.reduce((a, b) => a + b, 0) / rtts.length;
      const mdev = Math.sqrt(rtts.reduce((a, b) => a + (b - avg) ** 2, 0) / rtts.length);
      out.write(`rtt min/avg/max/mdev = ${[min, avg, max, mdev].map((v) => v.toFixed(3)).join('/')} ms\n`);
    }
    return lost === 0 ? 0 : 1;
  }, { retries: 0 });
}

// --- stats, ls, announce -----------------------------------------------------------------

async function runStats(ctx: CommandContext): Promise<number> {
  const stats = await withChatClient(ctx, (client) => client.stats());
  ctx.io.stdout.write(boolFlag(ctx, 'json') ? JSON.stringify(stats) + '\n' : formatStats(stats));
  return 0;
}

async function runLs(ctx: CommandContext): Promise<number> {
  const entries = await withClient(ctx, (client) => client.list());
  const out = ctx.io.stdout;
  if (boolFlag(ctx, 'json')) {
    out.write(JSON.stringify(entries) + '\n');
    return 0;
  }
  if (entries.length === 0) {
    ctx.io.stderr.write('no files\n');
    return 0;
  }
  const sizes = entries.map((e) => humanSize(e.size));
  const width = Math.max(4, ...sizes.map((s) => s.length));
  let text = `${'SIZE'.padStart(width)}  NAME\n`;
  entries.forEach((e, i) => {
    text += `${sizes[i]!.padStart(width)}  ${e.name}\n`;
  });
  out.write(text);
  return 0;
}

async function runAnnounce(ctx: CommandContext): Promise<number> {
  const token = stringFlag(ctx, 'token') ?? ctx.io.env.MUXD_ADMIN_TOKEN;
  if (!token) throw new UsageError('no admin token: pass --token or set MUXD_ADMIN_TOKEN');
  const text = ctx.positionals.join(' ');
  if (text === '') throw new UsageError('nothing to announce');
  await withClient(ctx, (client) => client.announce(token, text));
  ctx.io.stdout.write('announced\n');
  return 0;
}
