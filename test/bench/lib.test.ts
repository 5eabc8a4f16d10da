// The bench's pure helpers: the parsers of generator output, the byte-stream counters the peers
// and the MX/1 generator rely on, and the statistics. No load is run here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HeadCounter } from '../../bench/peers/raw-net.js';
import { fixedResponse } from '../../bench/peers/fixed-response.js';
import { FrameScanner, encodeFrame, MX } from '../../bench/lib/mx.js';
import { Histogram, bucketOf, median, valueOf } from '../../bench/lib/stats.js';
import { parseAutocannonJson, parseWrkOutput } from '../../bench/lib/http-load.js';
import { parseRedisCsv } from '../../bench/lib/redis-load.js';
import { parseHead } from '../../bench/lib/raw-http.js';
import { nginxConf } from '../../bench/lib/servers.js';
import { cpuTicksFromStat, bottleneck } from '../../bench/lib/sample.js';
import { share } from '../../bench/mx-load.js';
import { renderTable } from '../../bench/lib/report.js';
import { diskRate, diskRun, oneCoreCeiling, putCeiling, sha256Rate } from '../../bench/lib/ceilings.js';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

const REQ = 'GET /1k.txt HTTP/1.1\r\nHost: a\r\n\r\n';

test('HeadCounter finds every pipelined head at every split point', () => {
  const stream = Buffer.from(REQ.repeat(3) + 'GET / HTTP/1.1\r\nHost: a\r\n'); // 3 whole, 1 partial
  for (let cut = 0; cut <= stream.length; cut++) {
    const c = new HeadCounter();
    const n = c.push(stream.subarray(0, cut)) + c.push(stream.subarray(cut));
    assert.equal(n, 3, `split at ${cut}`);
  }
  const c = new HeadCounter();
  let bytewise = 0;
  for (const b of Buffer.from(REQ.repeat(2))) bytewise += c.push(Buffer.from([b]));
  assert.equal(bytewise, 2);
});

test('HeadCounter does not count a bare CR CR or LF LF', () => {
  assert.equal(new HeadCounter().push(Buffer.from('GET / HTTP/1.1\r\r\n\nx\n\n')), 0);
  assert.equal(new HeadCounter().push(Buffer.from('a\r\n\r\r\n\r\n')), 1);
});

test('fixedResponse pads to the requested total size', () => {
  assert.ok(fixedResponse(0).wire.length < 1200, 'the unpadded response must stay below a static server\'s');
  for (const size of [1250, 1300, 1400, 2000]) {
    const r = fixedResponse(size);
    assert.equal(r.wire.length, size);
    assert.ok(r.wire.toString('latin1').startsWith('HTTP/1.1 200 OK\r\n'));
    assert.ok(r.wire.toString('latin1').endsWith('\r\n\r\n' + 'x'.repeat(1024)));
  }
});

test('FrameScanner reports each frame at every split point, counting DATA without keeping it', () => {
  const stream = Buffer.concat([
    encodeFrame(MX.PING_OK, 7, Buffer.from('hello')),
    encodeFrame(MX.DATA, 9, Buffer.alloc(40, 1)),
    encodeFrame(MX.SAY_OK, 8),
    encodeFrame(MX.ERROR, 3, Buffer.from([0, 20, 0x6e, 0x6f])),
  ]);
  for (let cut = 0; cut <= stream.length; cut++) {
    const seen: string[] = [];
    let data = 0;
    const s = new FrameScanner({
      frame: (type, id, len, payload) => seen.push(`${type}:${id}:${len}:${payload === null ? '-' : payload.toString('hex')}`),
      data: (id, bytes) => {
        assert.equal(id, 9);
        data += bytes;
      },
    });
    s.push(stream.subarray(0, cut));
    s.push(stream.subarray(cut));
    assert.deepEqual(seen, [`${MX.PING_OK}:7:5:68656c6c6f`, `${MX.DATA}:9:40:-`, `${MX.SAY_OK}:8:0:`, `${MX.ERROR}:3:4:0014${'6e6f'}`], `split at ${cut}`);
    assert.equal(data, 40);
  }
});

test('FrameScanner rejects a reply with a bad magic', () => {
  const bad = encodeFrame(MX.PING_OK, 1);
  bad[0] = 0;
  assert.throws(() => new FrameScanner({ frame: () => undefined }).push(bad), /bad magic/);
});

test('histogram buckets round-trip within 0.1% and quantiles come from merged counts', () => {
  for (const v of [0, 1, 2047, 2048, 2049, 5000, 123_456, 9_999_999]) {
    const b = bucketOf(v);
    assert.ok(valueOf(b) <= v && v - valueOf(b) <= v * 0.001 + 1e-9, `value ${v} -> bucket ${b} -> ${valueOf(b)}`);
    assert.ok(bucketOf(v + 1) >= b);
  }
  const a = new Histogram();
  const b = new Histogram();
  for (let i = 1; i <= 50; i++) a.record(i);
  for (let i = 51; i <= 100; i++) b.record(i);
  const m = new Histogram();
  m.merge(a.counts);
  m.merge(b.counts);
  assert.equal(m.total, 100);
  assert.equal(m.quantile(0.5), 50);
  assert.equal(m.quantile(0.99), 99);
  assert.ok(Number.isNaN(new Histogram().quantile(0.5)));
});

test('median', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 2, 3]), 2.5);
  assert.equal(median([NaN, 5]), 5);
  assert.ok(Number.isNaN(median([])));
});

test('parseWrkOutput reads rate, transfer, latency percentiles and errors', () => {
  const out = `Running 2s test @ http://127.0.0.1:1/1k.txt
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   580.12us  300.00us   5.00ms   90.00%
  Latency Distribution
     50%  520.00us
     75%  600.00us
     90%  800.00us
     99%    2.80ms
  173600 requests in 2.00s, 223.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  86800.50
Transfer/sec:    111.50MB
`;
  const r = parseWrkOutput(out)!;
  assert.equal(r.requestsPerSecond, 86800.5);
  assert.equal(r.bytesPerSecond, 111.5 * 1024 * 1024);
  assert.equal(r.p50Micros, 520);
  assert.equal(r.p99Micros, 2800);
  assert.equal(r.errors, 7);
  assert.equal(parseWrkOutput('wrk: connection refused'), null);
});

test('parseAutocannonJson reads averages and does not count 304s as errors', () => {
  const json = JSON.stringify({ requests: { average: 45000 }, throughput: { average: 5e7 }, latency: { p50: 1, p99: 4 }, errors: 1, timeouts: 2, non2xx: 10, '3xx': 10 });
  const r = parseAutocannonJson('noise\n' + json)!;
  assert.equal(r.requestsPerSecond, 45000);
  assert.equal(r.p99Micros, 4000);
  assert.equal(r.errors, 3);
  assert.equal(parseAutocannonJson('no json here'), null);
});

test('parseRedisCsv reads rps and latency columns by header name', () => {
  const out = '"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"\n"PING_MBULK","59952.04","0.543","0.072","0.311","2.279","3.751","8.495"\n';
  const r = parseRedisCsv(out)!;
  assert.equal(r.opsPerSecond, 59952.04);
  assert.equal(r.p50Micros, 311);
  assert.equal(r.p99Micros, 3751);
  assert.equal(parseRedisCsv(''), null);
});

test('parseHead lower-cases field names and keeps values', () => {
  const h = parseHead('HTTP/1.1 304 Not Modified\r\nETag: "abc"\r\nContent-Length: 0');
  assert.equal(h.status, 304);
  assert.equal(h.headers.get('etag'), '"abc"');
});

test('nginxConf keeps every path under the prefix and listens on loopback only', () => {
  const conf = nginxConf('/tmp/p', '/tmp/site', 8123, false);
  assert.match(conf, /listen 127\.0\.0\.1:8123;/);
  assert.match(conf, /worker_processes 1;/);
  assert.match(conf, /keepalive_requests 100000;/);
  assert.doesNotMatch(conf, /user root/);
  for (const m of conf.matchAll(/(?:pid|error_log|_temp_path) (\S+?);?\s/g)) assert.ok(m[1]!.startsWith('/tmp/p/'), m[0]);
  assert.match(nginxConf('/tmp/p', '/tmp/site', 1, true), /^user root;$/m);
});

test('cpuTicksFromStat survives a command name with spaces and parens', () => {
  const line = '1234 (node (x) y) S 1 1234 1234 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 11 0 100 0 0';
  assert.equal(cpuTicksFromStat(line), 300);
});

test('bottleneck names the saturated side', () => {
  assert.match(bottleneck({ serverCpu: 0.98, generatorCpu: 0.5 }), /^server/);
  assert.match(bottleneck({ serverCpu: 0.6, generatorCpu: 0.99 }), /^generator/);
  assert.match(bottleneck({ serverCpu: 0.3, generatorCpu: 0.4 }), /^neither/);
  // Other processes kept core 0 busy: the run is flagged, not blamed on either side.
  assert.match(bottleneck({ serverCpu: 0.3, generatorCpu: 0.4, coreBusy: [0.95, 0.45] }), /^neither .*noisy: others used 65%/);
  assert.doesNotMatch(bottleneck({ serverCpu: 0.97, generatorCpu: 0.4, coreBusy: [1, 0.45] }), /noisy/);
});

test('share spreads connections over workers', () => {
  assert.deepEqual([0, 1, 2].map((i) => share(50, 3, i)), [17, 17, 16]);
  assert.deepEqual([0, 1].map((i) => share(1, 2, i)), [1, 0]);
});

test('renderTable: markdown escapes pipes and right-aligns numbers', () => {
  const md = renderTable([['load', 'muxd'], ['a|b', '1k']], true);
  assert.equal(md, '| load | muxd |\n|:--|--:|\n| a\\|b | 1k |');
});

test('putCeiling: min() when the store overlaps hashing and writing, the serial sum otherwise', () => {
  assert.deepEqual(putCeiling(300, 1500), { overlapped: 300, serial: 250 });
  assert.equal(putCeiling(2000, 1000).overlapped, 1000);
});

test('sha256Rate and diskRate measure something positive', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'muxd-ceil-'));
  try {
    const content = Buffer.alloc(1 << 20, 1);
    assert.ok(sha256Rate(content) > 0);
    assert.ok(diskRate(dir, content) > 0);
    const run = diskRun(dir, content);
    assert.ok(run.mbps > 0 && run.cpuSeconds >= 0);
    assert.deepEqual(await readdir(dir), [], 'the probe file is removed');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('oneCoreCeiling: the disk\'s time, or hashing plus the disk\'s CPU time when that is longer', () => {
  const size = 100e6; // 100 MB
  // Disk 1 s wall of which 0.2 s CPU, SHA-256 0.5 s: hashing + copies take 0.7 s < 1 s, the disk bounds.
  assert.equal(oneCoreCeiling({ diskMBps: 100, diskCpuSeconds: 0.2, sha256MBps: 200 }, size), 100);
  // Disk 0.1 s wall, all of it CPU, SHA-256 0.1 s: 0.2 s on one core.
  assert.equal(Math.round(oneCoreCeiling({ diskMBps: 1000, diskCpuSeconds: 0.1, sha256MBps: 1000 }, size)), 500);
});
