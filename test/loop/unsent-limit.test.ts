// --tcp-notsent-lowat: the listener sets TCP_NOTSENT_LOWAT on each accepted TCP socket, and with
// it a reader that stops reading makes the kernel take far less of our output (Linux only).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net, { type Socket } from 'node:net';
import { listen, type Listener } from '../../src/loop/listener.js';
import { Metrics } from '../../src/loop/metrics.js';
import { unsentLimitOf, unsentLimitProblem } from '../../src/loop/unsent-limit.js';
import { waitFor } from '../helpers/wait.js';

const skip = unsentLimitProblem() ?? false;

/** A listener whose protocol streams bytes to every connection for as long as the kernel takes them. */
async function streamer(tcpNotsentLowat: number | undefined): Promise<Listener> {
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  return listen({
    name: 'stream',
    endpoint: { host: '127.0.0.1', port: 0 },
    maxConnections: 10,
    ...(tcpNotsentLowat !== undefined ? { tcpNotsentLowat } : {}),
    metrics: new Metrics(),
    log: () => undefined,
    onConnection: (pipe) => {
      pipe.on('error', () => undefined);
      const pump = (): void => {
        while (!pipe.destroyed && pipe.write(chunk));
      };
      pipe.on('drain', pump);
      pump();
    },
    onRefuse: (s) => s.destroy(),
  });
}

/** The listener's first accepted TCP socket (what the option is set on; the protocol only sees its pipe). */
async function acceptedSocket(listener: Listener): Promise<Socket> {
  await waitFor(() => listener.sockets.size > 0, { what: 'the connection accepted' });
  return [...listener.sockets][0]!;
}

/** Connects, reads 16 KiB, stops reading; resolves with the bytes the server's kernel took once that stops growing. */
async function kernelTookFromStalledReader(listener: Listener): Promise<number> {
  const client = net.connect({ port: listener.port, host: '127.0.0.1' });
  let got = 0;
  client.on('data', (c: Buffer) => {
    got += c.length;
    if (got >= 16 * 1024) client.pause();
  });
  await new Promise((r) => client.once('connect', r));
  const server = await acceptedSocket(listener);
  const took = (): number => server.bytesWritten - server.writableLength;
  let last = -1;
  for (let i = 0; i < 100 && took() !== last; i++) {
    last = took();
    await new Promise((r) => setTimeout(r, 100));
  }
  client.destroy();
  return took();
}

test('the listener sets TCP_NOTSENT_LOWAT on accepted sockets, and leaves the kernel default without the option', { skip }, async () => {
  for (const [option, expected] of [[65536, 65536], [undefined, null]] as const) {
    const listener = await streamer(option);
    const c = net.connect({ port: listener.port, host: '127.0.0.1' });
    c.on('error', () => undefined);
    const value = unsentLimitOf(await acceptedSocket(listener));
    if (expected === null) assert.notEqual(value, 65536, 'no option, no change');
    else assert.equal(value, expected);
    c.destroy();
    await listener.close();
  }
});

test('a reader that stops reading: the kernel takes at most about a megabyte with the limit, several without', { skip }, async () => {
  const results: number[] = [];
  for (const option of [128 * 1024, 0]) {
    const listener = await streamer(option);
    results.push(await kernelTookFromStalledReader(listener));
    await listener.close();
  }
  const [limited, unlimited] = results as [number, number];
  // With the limit: the 16 KiB read, the reader's receive buffer, what is in flight and 128 KiB unsent.
  assert.ok(limited < 1024 * 1024, `with a 128 KiB limit the kernel took ${limited} bytes`);
  // The control: Linux grows the send buffer toward tcp_wmem's maximum (4 MiB by default).
  assert.ok(unlimited > 2 * limited, `without the limit the kernel took ${unlimited} bytes, with it ${limited}`);
});
