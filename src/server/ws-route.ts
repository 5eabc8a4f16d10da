// MX/1 over WebSocket on the HTTP port (issue 15), wired here because this is the one place that
// knows both faces: the HTTP face only sees a handler answering an Upgrade and a registered
// protocol taking the socket; the MX/1 face only sees a BytePipe to adopt.
//
//   GET --ws-path --> decideUpgradeForHead --> 101 + Upgrade 'websocket' | refusal (Connection: close)
//   upgraded socket --> WsPipe (src/ws) --> BinaryServer.adopt --> StreamConnection (room, store, ...)
import type { Connection } from '../loop/listener.js';
import type { Metrics } from '../loop/metrics.js';
import { absoluteFormPathStart } from '../http/authority.js';
import { SERVER_HEADER, statusLine } from '../http/status.js';
import type { Answer, Handler, Reply, RequestHead, UpgradeProtocol } from '../http/types.js';
import type { BinaryServer } from '../binary/server.js';
import type { StreamConnection } from '../binary/stream.js';
import { decideUpgradeForHead, type UpgradeRefusal } from '../ws/handshake.js';
import { WsPipe } from '../ws/pipe.js';

/** The name the handler's Upgrade answer and the HTTP server's registry use. */
export const WS_UPGRADE = 'websocket';

export interface WsRouteOptions {
  /** --ws-path. */
  path: string;
  /** How requests reach this listener: the own origin is `${scheme}://${Host}`. */
  scheme: 'http' | 'https';
  /** --ws-origins: null = our own origin only. */
  origins: readonly string[] | '*' | null;
}

/** The request's path, query dropped, for origin-form and absolute-form targets alike. */
function pathOf(target: string): string {
  let p = target;
  if (p.charCodeAt(0) !== 0x2f /* / */) {
    const at = absoluteFormPathStart(p);
    if (at === -1) return p;
    p = p.charCodeAt(at) === 0x2f ? p.slice(at) : '/' + p.slice(at);
  }
  const q = p.indexOf('?');
  return q === -1 ? p : p.slice(0, q);
}

function refusalReply(r: UpgradeRefusal): Reply {
  const body = Buffer.from(r.body, 'utf8');
  let head = statusLine(r.status) + SERVER_HEADER;
  for (const [n, v] of r.headers) head += `${n}: ${v}\r\n`;
  head += `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\n`;
  // close: the connection adds Connection: close and ends after the body.
  return { status: r.status, head, body: [body], bodyLength: body.length, close: true };
}

/**
 * Wraps the site: requests to the WebSocket path get the handshake decision (an Upgrade to
 * WS_UPGRADE, or a refusal that closes the connection); every other request, with or without
 * `Upgrade: websocket`, goes to the site as usual.
 */
export function withWsRoute(inner: Handler, opts: WsRouteOptions): Handler {
  const origins = opts.origins ?? [];
  const path = opts.path;
  return {
    handle(head: RequestHead): Answer | Promise<Answer> {
      // One prefix test on the hot path; the exact comparison only for candidates.
      const t = head.target;
      if (t.charCodeAt(0) === 0x2f && !t.startsWith(path)) return inner.handle(head);
      if (pathOf(t) !== path) return inner.handle(head);
      const d = decideUpgradeForHead(head, opts.scheme, origins);
      if (!d.accept) return refusalReply(d);
      let h = 'HTTP/1.1 101 Switching Protocols\r\n';
      for (const [n, v] of d.headers) h += `${n}: ${v}\r\n`;
      return { upgrade: WS_UPGRADE, reply: { status: 101, head: h, body: [], bodyLength: 0 } };
    },
  };
}

/**
 * What the HTTP listener keeps for an upgraded connection: the MX/1 stream driver's deadlines
 * (hello, idle, transfers) and the WebSocket's (ping, idle close, close timeout) as one Timed.
 */
class WsMember implements Connection {
  constructor(
    private readonly pipe: WsPipe,
    private readonly stream: StreamConnection,
  ) {}

  /** The earlier of the two armed deadlines (0 = none). */
  get deadline(): number {
    const a = this.stream.deadline;
    const b = this.pipe.deadline;
    if (a === 0) return b;
    if (b === 0) return a;
    return a < b ? a : b;
  }

  /** The sweeper disarms before calling onDeadline; each part re-arms its own deadline. */
  set deadline(_disarmed: number) {}

  onDeadline(now: number): void {
    const s = this.stream.deadline;
    if (s !== 0 && s <= now) {
      this.stream.deadline = 0;
      this.stream.onDeadline(now);
    }
    const p = this.pipe.deadline;
    if (p !== 0 && p <= now) {
      this.pipe.deadline = 0;
      this.pipe.onDeadline(now);
    }
  }

  /** Shutdown: chat members hear the ANNOUNCEMENT, then the close frame says 1001. */
  drain(): void {
    this.pipe.goingAway();
    this.stream.drain();
  }

  abort(): boolean {
    return this.stream.abort();
  }
}

export interface WsUpgradeOptions {
  /** The MX/1 face, once it is up (it always is before the first connection is accepted). */
  binary: () => BinaryServer | null;
  metrics: Metrics;
  /** --max-frame. */
  maxPayload: number;
  /** --ws-ping-interval in ms. */
  pingIntervalMs: number;
  /** The HTTP listener's name in the metrics: an upgraded connection moves from its figure to `ws`. */
  listener: string;
}

const openPipes = new WeakMap<Metrics, Set<WsPipe>>();

/**
 * The open WebSockets of one server (one Metrics, whichever HTTP listeners upgrade), and the
 * gauge wsRetainedBytes: what their codecs hold for messages still arriving. Each is bounded
 * (--max-frame + 12, a control frame, one paused read), so the gauge shows the bound holds.
 */
function openPipesOf(metrics: Metrics): Set<WsPipe> {
  let pipes = openPipes.get(metrics);
  if (pipes === undefined) {
    const set = (pipes = new Set<WsPipe>());
    openPipes.set(metrics, set);
    metrics.gauge('wsRetainedBytes', () => {
      let n = 0;
      for (const p of set) n += p.retained;
      return n;
    });
  }
  return pipes;
}

/** The protocol the HTTP server switches a 101'd connection to: MX/1 over WebSocket. */
export function wsUpgrade(opts: WsUpgradeOptions): UpgradeProtocol {
  const { metrics } = opts;
  // WebSocket connections are their own figure (connections.ws), also while there are none.
  metrics.open.ws ??= 0;
  metrics.accepted.ws ??= 0;
  const open = openPipesOf(metrics);
  return (socket, leftover) => {
    const binary = opts.binary();
    if (binary === null) throw new Error('MX/1 over WebSocket needs the MX/1 face');
    const pipe = new WsPipe(socket, { maxPayload: opts.maxPayload, pingIntervalMs: opts.pingIntervalMs });
    const stream = binary.adopt(pipe);
    // Its own figure, not also an HTTP one (sums over connections count each socket once). The
    // listener takes it off its own figure when the socket closes, after this has put it back.
    const from = opts.listener;
    metrics.open[from] = (metrics.open[from] ?? 1) - 1;
    metrics.open.ws!++;
    metrics.accepted.ws!++;
    open.add(pipe);
    pipe.on('close', () => {
      open.delete(pipe);
      metrics.open.ws!--;
      metrics.open[from] = (metrics.open[from] ?? 0) + 1;
    });
    pipe.start(leftover);
    return new WsMember(pipe, stream);
  };
}
