// The server's TLS material: the certificate and key files read and checked (each problem one
// line naming its flag), the validity dates, and the SecureContext every new handshake of both
// TLS listeners uses. A reload (SIGHUP) builds a new context for new handshakes only; a pair that
// fails keeps the one in force. Ticket keys (session resumption, RFC 5077 / RFC 8446 §4.6.1)
// outlive reloads, and in a cluster are the primary's, shared by every worker.
import { constants as cryptoConstants, createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContext } from 'node:tls';

/** PEM text of a certificate (chain) and its key, as read from the files. */
export interface TlsMaterial {
  cert: string;
  key: string;
}

/** Session ticket keys: 16 bytes name, 16 HMAC, 16 AES (Node takes exactly 48). */
export const TICKET_KEY_BYTES = 48;

export function newTicketKeys(): Buffer {
  return randomBytes(TICKET_KEY_BYTES);
}

export type TlsVersion = 'TLSv1.2' | 'TLSv1.3';

// No compression (CRIME) and no renegotiation, on top of Node's defaults (its cipher list,
// SSLv2/3 off); TLS 1.0/1.1 are below every --tls-min-version we accept.
const SECURE_OPTIONS = cryptoConstants.SSL_OP_NO_COMPRESSION | cryptoConstants.SSL_OP_NO_RENEGOTIATION;

/** Reads and checks the pair; every problem as one line naming its flag (empty = usable). */
export function loadTlsMaterial(certFile: string, keyFile: string): { material: TlsMaterial; cert: X509Certificate } | { problems: string[] } {
  const problems: string[] = [];
  const read = (flag: string, file: string): string | null => {
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      problems.push(`${flag} ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'not readable (permission denied)' : `cannot read: ${(err as Error).message}`}`);
      return null;
    }
  };
  const certPem = read('--tls-cert', certFile);
  const keyPem = read('--tls-key', keyFile);
  let cert: X509Certificate | null = null;
  if (certPem !== null) {
    try {
      cert = new X509Certificate(certPem);
    } catch {
      problems.push(`--tls-cert ${certFile}: not a PEM certificate`);
    }
  }
  let keyOk = false;
  if (keyPem !== null) {
    try {
      const key = createPrivateKey(keyPem);
      keyOk = true;
      if (cert !== null && !cert.checkPrivateKey(key)) problems.push(`--tls-key ${keyFile}: does not match the certificate in --tls-cert ${certFile}`);
    } catch {
      problems.push(`--tls-key ${keyFile}: not a PEM private key (an encrypted key is not supported)`);
    }
  }
  if (problems.length > 0 || cert === null || !keyOk || certPem === null || keyPem === null) return { problems };
  const material = { cert: certPem, key: keyPem };
  try {
    // Whatever else OpenSSL refuses (a key too weak for its security level, say).
    createSecureContext({ cert: certPem, key: keyPem });
  } catch (err) {
    return { problems: [`--tls-cert ${certFile}: ${(err as Error).message}`] };
  }
  return { material, cert };
}

/** One warning line when the certificate is not valid at `now`, with its dates; null when it is. */
export function validityWarning(certFile: string, cert: X509Certificate, now: number): string | null {
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  const dates = `valid from ${cert.validFrom} to ${cert.validTo}`;
  if (now > to) return `muxd: warning: --tls-cert ${certFile}: the certificate has expired (${dates}); starting anyway`;
  if (now < from) return `muxd: warning: --tls-cert ${certFile}: the certificate is not yet valid (${dates}); starting anyway`;
  return null;
}

/** The context in force for new handshakes; both TLS listeners read it per connection. */
export class TlsState {
  private current: SecureContext;

  constructor(
    private material: TlsMaterial,
    private ticketKeys: Buffer,
    private readonly minVersion: TlsVersion,
  ) {
    this.current = this.build();
  }

  private build(): SecureContext {
    return createSecureContext({ cert: this.material.cert, key: this.material.key, minVersion: this.minVersion, secureOptions: SECURE_OPTIONS, ticketKeys: this.ticketKeys });
  }

  context(): SecureContext {
    return this.current;
  }

  /** New pair and/or ticket keys for the next handshakes; open connections keep theirs. */
  update(material: TlsMaterial, ticketKeys: Buffer = this.ticketKeys): void {
    const before = { material: this.material, ticketKeys: this.ticketKeys };
    this.material = material;
    this.ticketKeys = ticketKeys;
    try {
      this.current = this.build();
    } catch (err) {
      this.material = before.material;
      this.ticketKeys = before.ticketKeys;
      throw err;
    }
  }
}
