// Certificates minted in the test: a CA, server leaves for 127.0.0.1/localhost, client leaves; written as PEM files.
import "reflect-metadata"; // @peculiar/x509 2.x needs a Reflect polyfill before it loads
import { webcrypto } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";
import { createCa, SIGNING, serialNumber, toPem } from "../../server/egress/ca.js";

const DAY = 86_400_000;

/** A certificate and its key, PEM, and where they were written. */
export interface Leaf {
  certPem: string;
  keyPem: string;
  certFile: string;
  keyFile: string;
  /** Hex, lower case, as Node's getPeerCertificate().serialNumber gives it (upper case there). */
  serial: string;
}

/** A test CA that writes its certificate to `<dir>/<name>-ca.pem` and mints leaves into `dir`. */
export async function testCa(dir: string, name = "test") {
  const ca = await createCa(`CN=Veil ${name} CA`);
  const caFile = join(dir, `${name}-ca.pem`);
  writeFileSync(caFile, ca.certPem);
  let n = 0;
  async function leaf(kind: "server" | "client", subject: string): Promise<Leaf> {
    const keys = (await webcrypto.subtle.generateKey(SIGNING, true, ["sign", "verify"])) as CryptoKeyPair;
    const serial = serialNumber();
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial,
      subject: `CN=${subject}`,
      issuer: ca.cert.subject,
      notBefore: new Date(Date.now() - DAY),
      notAfter: new Date(Date.now() + DAY),
      signingAlgorithm: SIGNING,
      publicKey: keys.publicKey,
      signingKey: ca.privateKey,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([kind === "server" ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth]),
        ...(kind === "server"
          ? [
              new x509.SubjectAlternativeNameExtension([
                { type: "ip", value: "127.0.0.1" },
                { type: "dns", value: "localhost" },
              ]),
            ]
          : []),
        await x509.AuthorityKeyIdentifierExtension.create(ca.cert),
      ],
    });
    const certPem = `${cert.toString("pem")}\n`;
    const keyPem = toPem("PRIVATE KEY", await webcrypto.subtle.exportKey("pkcs8", keys.privateKey));
    const base = join(dir, `${name}-${kind}-${++n}`);
    writeFileSync(`${base}.pem`, certPem);
    writeFileSync(`${base}-key.pem`, keyPem, { mode: 0o600 });
    return { certPem, keyPem, certFile: `${base}.pem`, keyFile: `${base}-key.pem`, serial };
  }
  return {
    certPem: ca.certPem,
    caFile,
    server: (subject = "127.0.0.1") => leaf("server", subject),
    client: (subject = "test client") => leaf("client", subject),
  };
}
