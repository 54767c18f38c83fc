// The gateway's own CA: created once in the data dir, and the trust files the sandbox binds.
import "reflect-metadata"; // @peculiar/x509 2.x needs a Reflect polyfill before it loads
import { randomBytes, webcrypto } from "node:crypto";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { rootCertificates } from "node:tls";
import * as x509 from "@peculiar/x509";

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

/** ECDSA P-256 with SHA-256: fast to mint (a leaf in ~5 ms) and accepted by every current client. */
export const SIGNING = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const DAY = 86_400_000;

/** The CA the gateway signs leaves with. */
export interface EgressCa {
  readonly cert: x509.X509Certificate;
  readonly privateKey: CryptoKey;
  readonly certPem: string;
}

/**
 * A random positive serial number of 16 bytes, hex. The first byte is 0x01-0x7f: positive, and
 * never a leading zero that DER's minimal encoding would drop, so this hex is exactly the serial
 * the certificate carries and a TLS peer reports (with 0x00 first, 1 in 128 before, it was not).
 */
export function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = 1 + (bytes[0]! % 0x7f);
  return bytes.toString("hex");
}

/** PEM armour for DER bytes. */
export function toPem(label: string, der: ArrayBuffer): string {
  const lines = Buffer.from(der).toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/** A new self-signed CA: 10 years, may sign leaves only (path length 0). */
export async function createCa(name = "CN=Veil egress CA, O=Veil"): Promise<EgressCa & { keyPem: string }> {
  const keys = (await webcrypto.subtle.generateKey(SIGNING, true, ["sign", "verify"])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 3650 * DAY),
    signingAlgorithm: SIGNING,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const keyPem = toPem("PRIVATE KEY", await webcrypto.subtle.exportKey("pkcs8", keys.privateKey));
  return { cert, privateKey: keys.privateKey, certPem: `${cert.toString("pem")}\n`, keyPem };
}

/**
 * Loads `<dataDir>/egress-ca.pem` and its key `egress-ca-key.pem` (0600), creating both on first
 * start. The key never leaves the data dir; only the certificate is given to sandboxes.
 */
export async function loadOrCreateCa(dataDir: string): Promise<EgressCa> {
  const certPath = join(dataDir, "egress-ca.pem");
  const keyPath = join(dataDir, "egress-ca-key.pem");
  if (existsSync(certPath) && existsSync(keyPath)) {
    const certPem = readFileSync(certPath, "utf8");
    const keyDer = x509.PemConverter.decode(readFileSync(keyPath, "utf8"))[0]!;
    const privateKey = await webcrypto.subtle.importKey("pkcs8", keyDer, SIGNING, false, ["sign"]);
    return { cert: new x509.X509Certificate(certPem), privateKey, certPem };
  }
  const ca = await createCa();
  // Key first, private from the first byte: a crash between the writes leaves no cert without its key.
  writeFileSync(keyPath, ca.keyPem, { mode: 0o600 });
  chmodSync(keyPath, 0o600);
  writeFileSync(certPath, ca.certPem, { mode: 0o644 });
  return ca;
}

/** Host paths of the trust files a sandbox binds read-only. */
export interface SandboxTrustFiles {
  /** The system CAs plus Veil's CA (SSL_CERT_FILE, CURL_CA_BUNDLE, ...). */
  readonly caBundle: string;
  /** Veil's CA alone (NODE_EXTRA_CA_CERTS: Node appends it to its own roots). */
  readonly caCert: string;
}

const SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";

/**
 * Writes the trust files once per server into its work subdir (0711, so a sandbox's uid can bind
 * them); both are 0644 and hold certificates only.
 */
export function writeSandboxTrust(ca: EgressCa, serverDir: string): SandboxTrustFiles {
  const system = existsSync(SYSTEM_BUNDLE) ? readFileSync(SYSTEM_BUNDLE, "utf8") : `${rootCertificates.join("\n")}\n`;
  const caCert = join(serverDir, "egress-ca.pem");
  const caBundle = join(serverDir, "egress-ca-bundle.pem");
  writeFileSync(caCert, ca.certPem, { mode: 0o644 });
  writeFileSync(caBundle, `${system.trimEnd()}\n${ca.certPem}`, { mode: 0o644 });
  chmodSync(caCert, 0o644);
  chmodSync(caBundle, 0o644);
  return { caBundle, caCert };
}
