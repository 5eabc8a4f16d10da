// Starts the real MX/1 server (src/binary) in-process on an ephemeral 127.0.0.1 port, with a
// fresh files directory, for the client's integration and CLI tests.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startBinaryServer, type BinaryServer, type BinaryServerOptions } from '../../src/binary/server.js';
import { Metrics } from '../../src/loop/metrics.js';

export const ADMIN_TOKEN = 't0ken';

export interface RealServer {
  server: BinaryServer;
  port: number;
  filesDir: string;
  stop(): Promise<void>;
}

export async function startRealServer(endpoint: { path: string } | null = null, overrides: Partial<BinaryServerOptions> = {}): Promise<RealServer> {
  const filesDir = mkdtempSync(path.join(os.tmpdir(), 'muxd-files-'));
  const server = await startBinaryServer({
    endpoint: endpoint ?? { host: '127.0.0.1', port: 0 },
    maxConnections: 100,
    maxFrame: 1 << 20,
    maxUpload: 1 << 30,
    filesDir,
    adminToken: ADMIN_TOKEN,
    maxOutputBytes: 4 << 20,
    idleTimeoutMs: 60000,
    metrics: new Metrics(),
    log: () => {},
    ...overrides,
  });
  return {
    server,
    port: server.listener.port,
    filesDir,
    stop: async () => {
      await server.close();
      rmSync(filesDir, { recursive: true, force: true });
    },
  };
}
