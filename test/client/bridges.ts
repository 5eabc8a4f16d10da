// Stand-ins for the server's WebSocket and TLS faces while those are built elsewhere: each
// relays to a real MX/1 TCP port (./real-server.ts), so the client is tested against the real
// core through a foreign WebSocket implementation (the `ws` package) and node:tls.
//  - ws bridge: each binary message from the client goes to the MX/1 port as it is; each MX/1
//    frame from the port goes back as one binary message. Optionally over https (wss).
//  - tls bridge: terminates TLS (ALPN mx1) and pipes the bytes both ways.
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { FrameDecoder, encodeFrame } from '../../src/wire/frame.js';
import { testCerts } from '../helpers/tls-certs.js';
import { startRealServer, type RealServer } from './real-server.js';

export const WS_PATH = '/.well-known/muxd/mx';

export interface WsBridge {
  port: number;
  url: string;
  /** Open server-side WebSockets, in accept order. */
  sockets: WebSocket[];
  /** Per accepted socket: the close code and reason the client sent, once it did. */
  closes: { code: number; reason: string }[];
  /** Per accepted socket: the pong payloads received. */
  pongs: Buffer[][];
  /** The subprotocol selected per accepted socket. */
  protocols: string[];
  stop(): Promise<void>;
}

export interface WsBridgeOptions {
  /** Close 1009 for a message larger than this (the `ws` package's maxPayload). */
  maxPayload?: number;
  /** Serve wss:// with this certificate and key. */
  tls?: { cert: string; key: string };
}

export async function startWsBridge(mxPort: number, opts: WsBridgeOptions = {}): Promise<WsBridge> {
  const server = opts.tls ? https.createServer({ cert: opts.tls.cert, key: opts.tls.key }) : null;
  const wss = server
    ? new WebSocketServer({ server, path: WS_PATH, maxPayload: opts.maxPayload ?? 64 << 20, handleProtocols: pickMx1 })
    : new WebSocketServer({ host: '127.0.0.1', port: 0, path: WS_PATH, maxPayload: opts.maxPayload ?? 64 << 20, handleProtocols: pickMx1 });
  if (server) await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  else await new Promise<void>((resolve) => wss.once('listening', resolve));
  const upstreams = new Set<net.Socket>();
  const bridge: WsBridge = {
    port: 0,
    url: '',
    sockets: [],
    closes: [],
    pongs: [],
    protocols: [],
    stop: async () => {
      for (const s of upstreams) s.destroy();
      for (const ws of wss.clients) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      if (server) {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    },
  };
  bridge.port = ((server ?? wss).address() as AddressInfo).port;
  bridge.url = `${opts.tls ? 'wss' : 'ws'}://127.0.0.1:${bridge.port}${WS_PATH}`;
  wss.on('connection', (ws) => {
    const index = bridge.sockets.length;
    bridge.sockets.push(ws);
    bridge.pongs.push([]);
    bridge.protocols.push(ws.protocol);
    const up = net.connect({ host: '127.0.0.1', port: mxPort });
    upstreams.add(up);
    const decoder = new FrameDecoder(64 << 20);
    up.on('data', (chunk: Buffer) => {
      decoder.push(chunk);
      for (let f = decoder.next(); f !== null; f = decoder.next()) ws.send(Buffer.concat(encodeFrame(f.type, f.id, f.payload)), { binary: true });
    });
    up.on('error', () => ws.terminate());
    up.on('close', () => {
      upstreams.delete(up);
      if (ws.readyState === ws.OPEN) ws.close(1001, 'upstream closed');
    });
    ws.on('message', (data, isBinary) => {
      if (!isBinary) {
        ws.close(1003, 'binary only');
        return;
      }
      up.write(data as Buffer);
    });
    ws.on('pong', (payload) => bridge.pongs[index]!.push(payload));
    ws.on('close', (code, reason) => {
      bridge.closes[index] = { code, reason: reason.toString() };
      up.end();
    });
    ws.on('error', () => {});
  });
  return bridge;
}

function pickMx1(protocols: Set<string>): string | false {
  return protocols.has('mx1') ? 'mx1' : false;
}

export interface TlsBridge {
  port: number;
  /** Per accepted connection: the SNI name the client sent (false when none) and the ALPN protocol agreed. */
  handshakes: { servername: string | false; alpn: string | false }[];
  stop(): Promise<void>;
}

export async function startTlsBridge(mxPort: number, creds: { cert: string; key: string }): Promise<TlsBridge> {
  const conns = new Set<net.Socket>();
  const bridge: TlsBridge = { port: 0, handshakes: [], stop: async () => {} };
  const server = tls.createServer({ cert: creds.cert, key: creds.key, ALPNProtocols: ['mx1'] }, (s) => {
    bridge.handshakes.push({ servername: s.servername ?? false, alpn: s.alpnProtocol ?? false });
    const up = net.connect({ host: '127.0.0.1', port: mxPort });
    conns.add(s).add(up);
    s.pipe(up).pipe(s);
    const drop = (): void => {
      s.destroy();
      up.destroy();
      conns.delete(s);
      conns.delete(up);
    };
    s.on('error', drop).on('close', drop);
    up.on('error', drop).on('close', drop);
  });
  // Failed handshakes (the tests that refuse our certificate) are expected here.
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  bridge.port = (server.address() as AddressInfo).port;
  bridge.stop = async () => {
    for (const c of conns) c.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return bridge;
}

/** The real MX/1 core (./real-server.ts) behind a ws://, a wss:// and a TLS bridge: what the client tests run against. */
export interface Bridged {
  real: RealServer;
  wsb: WsBridge;
  wssb: WsBridge;
  tlsb: TlsBridge;
  stop(): Promise<void>;
}

export async function startBridged(): Promise<Bridged> {
  const certs = testCerts();
  const real = await startRealServer();
  const wsb = await startWsBridge(real.port);
  const wssb = await startWsBridge(real.port, { tls: certs });
  const tlsb = await startTlsBridge(real.port, certs);
  return {
    real,
    wsb,
    wssb,
    tlsb,
    stop: async () => {
      await Promise.all([wsb.stop(), wssb.stop(), tlsb.stop()]);
      await real.stop();
    },
  };
}
