// Leaf certificates for intercepted hosts, minted by the gateway's CA and cached per host.
import "reflect-metadata"; // @peculiar/x509 2.x needs a Reflect polyfill before it loads
import { webcrypto } from "node:crypto";
import { isIP } from "node:net";
import { createSecureContext, type SecureContext } from "node:tls";
import * as x509 from "@peculiar/x509";
import { type EgressCa, SIGNING, serialNumber, toPem } from "./ca.js";

const DAY = 86_400_000;
const LEAF_DAYS = 7;

interface Entry {
  readonly context: Promise<SecureContext>;
  readonly expires: number;
}

/**
 * host -> TLS context for the sandbox side of an intercepted CONNECT. One key pair serves every
 * leaf of this process (halves minting time; the key never leaves memory). An LRU bounds memory;
 * a leaf is re-minted when less than a day of its 7 is left.
 */
export class LeafCache {
  private readonly entries = new Map<string, Entry>();
  private keys: Promise<CryptoKeyPair> | undefined;

  constructor(
    private readonly ca: EgressCa,
    private readonly capacity = 1000,
  ) {}

  /** The context for `host` (the CONNECT authority's name or IP literal, normalised). */
  context(host: string): Promise<SecureContext> {
    const hit = this.entries.get(host);
    if (hit !== undefined && hit.expires - Date.now() > DAY) {
      this.entries.delete(host); // re-insert: most recently used last
      this.entries.set(host, hit);
      return hit.context;
    }
    const context = this.mint(host);
    this.entries.set(host, { context, expires: Date.now() + LEAF_DAYS * DAY });
    // A failed mint must not stay cached.
    context.catch(() => this.entries.delete(host));
    while (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
    return context;
  }

  private async mint(host: string): Promise<SecureContext> {
    this.keys ??= webcrypto.subtle.generateKey(SIGNING, true, ["sign", "verify"]) as Promise<CryptoKeyPair>;
    const keys = await this.keys;
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serialNumber(),
      subject: `CN=${host}`,
      issuer: this.ca.cert.subject,
      notBefore: new Date(Date.now() - DAY),
      notAfter: new Date(Date.now() + LEAF_DAYS * DAY),
      signingAlgorithm: SIGNING,
      publicKey: keys.publicKey,
      signingKey: this.ca.privateKey,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension([isIP(host) !== 0 ? { type: "ip", value: host } : { type: "dns", value: host }]),
        // Python 3.13's VERIFY_X509_STRICT requires the authority key identifier.
        await x509.AuthorityKeyIdentifierExtension.create(this.ca.cert),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    const key = toPem("PRIVATE KEY", await webcrypto.subtle.exportKey("pkcs8", keys.privateKey));
    return createSecureContext({ cert: cert.toString("pem"), key });
  }
}
