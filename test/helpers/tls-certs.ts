// Throwaway TLS material made at test time with the openssl command: a CA, a server certificate
// it signs for 127.0.0.1, ::1 and localhost, and a second CA that signed nothing (to show that
// trusting the wrong CA fails). Made once per test process, in a temporary folder removed at exit.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface TestCerts {
  dir: string;
  /** The CA that signed the server certificate (PEM), and its file. */
  ca: string;
  caFile: string;
  /** The server certificate and its key (PEM), and their files. */
  cert: string;
  certFile: string;
  key: string;
  keyFile: string;
  /** A CA that signed nothing here. */
  otherCa: string;
  otherCaFile: string;
}

let made: TestCerts | null = null;

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
}

/** The test certificates (made on the first call). Names: 127.0.0.1, ::1, localhost; valid for 2 days. */
export function testCerts(): TestCerts {
  if (made !== null) return made;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'muxd-tls-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  for (const name of ['ca', 'other-ca']) {
    openssl(['req', '-x509', ...ec, '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=muxd test ${name}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  }
  openssl(['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost'], dir);
  writeFileSync(path.join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n');
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'server.ext'], dir);
  const file = (n: string): string => path.join(dir, n);
  made = {
    dir,
    ca: readFileSync(file('ca.pem'), 'utf8'),
    caFile: file('ca.pem'),
    cert: readFileSync(file('server.pem'), 'utf8'),
    certFile: file('server.pem'),
    key: readFileSync(file('server.key'), 'utf8'),
    keyFile: file('server.key'),
    otherCa: readFileSync(file('other-ca.pem'), 'utf8'),
    otherCaFile: file('other-ca.pem'),
  };
  return made;
}
