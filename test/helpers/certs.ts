// Throwaway TLS material made with the openssl command at test time: a CA, and server
// certificates it signs for localhost and 127.0.0.1 (EC P-256: fast to make). Each call makes a
// fresh directory; remove it with cleanup().
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface ServerCert {
  certFile: string;
  keyFile: string;
  cert: Buffer;
  key: Buffer;
  /** The certificate's serial number (hex, as X509Certificate shows it): tells two apart. */
  serial: string;
  /** base64 SHA-256 of the SubjectPublicKeyInfo (Chromium's --ignore-certificate-errors-spki-list). */
  spki: string;
}

export interface TestCa {
  dir: string;
  caFile: string;
  ca: Buffer;
  /** A new key and certificate for localhost + 127.0.0.1 signed by this CA; dates optional (YYYYMMDDHHMMSSZ). */
  issue(name: string, dates?: { start: string; end: string }): ServerCert;
  cleanup(): void;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

export function makeTestCa(): TestCa {
  const dir = mkdtempSync(path.join(tmpdir(), 'muxd-certs-'));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl(['req', '-x509', ...ec, '-days', '3', '-subj', '/CN=muxd test CA', '-keyout', 'ca.key', '-out', 'ca.pem', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  writeFileSync(path.join(dir, 'server.ext'), 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n');
  // `openssl ca` is the only way OpenSSL 3.0 sets arbitrary validity dates (an expired certificate).
  writeFileSync(path.join(dir, 'index.txt'), '');
  writeFileSync(path.join(dir, 'serial'), '1000\n');
  writeFileSync(
    path.join(dir, 'ca.cnf'),
    `[ca]\ndefault_ca=d\n[d]\ndatabase=${dir}/index.txt\nnew_certs_dir=${dir}\nserial=${dir}/serial\ndefault_md=sha256\npolicy=p\nunique_subject=no\n[p]\ncommonName=supplied\n`,
  );
  let serial = 1;
  const issue = (name: string, dates?: { start: string; end: string }): ServerCert => {
    const keyFile = path.join(dir, `${name}.key`);
    const certFile = path.join(dir, `${name}.pem`);
    openssl(['req', ...ec, '-subj', '/CN=localhost', '-keyout', keyFile, '-out', `${name}.csr`], dir);
    if (dates === undefined) {
      openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', String(serial++), '-days', '2', '-extfile', 'server.ext', '-out', certFile], dir);
    } else {
      openssl(['ca', '-batch', '-config', 'ca.cnf', '-cert', 'ca.pem', '-keyfile', 'ca.key', '-in', `${name}.csr`, '-out', certFile, '-notext', '-startdate', dates.start, '-enddate', dates.end, '-extfile', 'server.ext'], dir);
    }
    const cert = readFileSync(certFile);
    const x509 = new X509Certificate(cert);
    const spki = createHash('sha256').update(x509.publicKey.export({ type: 'spki', format: 'der' })).digest('base64');
    return { certFile, keyFile, cert, key: readFileSync(keyFile), serial: x509.serialNumber, spki };
  };
  return { dir, caFile: path.join(dir, 'ca.pem'), ca: readFileSync(path.join(dir, 'ca.pem')), issue, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
