// A Writable that keeps everything written to it: a download sink for client tests.
import { Writable } from 'node:stream';

export function collector(): Writable & { data(): Buffer } {
  const parts: Buffer[] = [];
  const w = new Writable({
    write(chunk: Buffer, _enc, done) {
      parts.push(chunk);
      done();
    },
  }) as Writable & { data(): Buffer };
  w.data = () => Buffer.concat(parts);
  return w;
}
