// A throwaway self-signed certificate for the TLS rows, made by openssl at bench time under
// .bench-out/tls/ (git-ignored). Every TLS server of a run (muxd, the node:https peer, nginx)
// serves this same pair, so the handshake's signature cost is the same for all of them.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { hasTool } from './proc.js';

/** ec: ECDSA P-256 (what a modern CA issues by default); rsa: RSA 2048 (a slower signature per full handshake). */
export type CertKeyType = 'ec' | 'rsa';
export const CERT_KEY_TYPES: readonly CertKeyType[] = ['ec', 'rsa'];

export interface BenchCert {
  cert: string;
  key: string;
  keyType: CertKeyType;
}

export function makeBenchCert(keyType: CertKeyType = 'ec', dir = path.resolve('.bench-out', 'tls')): BenchCert {
  if (!hasTool('openssl')) throw new Error('openssl not installed: the TLS rows need it to make a certificate');
  mkdirSync(dir, { recursive: true });
  const cert = path.join(dir, `cert-${keyType}.pem`);
  const key = path.join(dir, `key-${keyType}.pem`);
  const newkey = keyType === 'ec' ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'] : ['-newkey', 'rsa:2048'];
  const r = spawnSync(
    'openssl',
    ['req', '-x509', ...newkey, '-nodes', '-sha256', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', key, '-out', cert],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`openssl could not make a certificate: ${(r.stderr ?? '').slice(0, 500)}`);
  return { cert, key, keyType };
}
