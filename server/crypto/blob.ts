// Sealed blob format: AES-256-GCM ciphertext that names its format and key generation.
import { createCipheriv, createDecipheriv, randomFillSync } from "node:crypto";
import { fail } from "../errors.js";

/** Format byte of the current blob layout. */
const FORMAT_V1 = 1;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = 1 + 4 + NONCE_BYTES;

// Nonces come from a pool refilled 512 at a time: one CSPRNG call per nonce cost more than
// the encryption itself on the write path. Each slice is handed out once, never reused.
const NONCE_POOL = Buffer.alloc(NONCE_BYTES * 512);
let noncePoolOffset = NONCE_POOL.length;

function nextNonce(target: Buffer, at: number) {
  if (noncePoolOffset === NONCE_POOL.length) {
    randomFillSync(NONCE_POOL);
    noncePoolOffset = 0;
  }
  NONCE_POOL.copy(target, at, noncePoolOffset, noncePoolOffset + NONCE_BYTES);
  noncePoolOffset += NONCE_BYTES;
}

/**
 * Layout: [format u8][generation u32 BE][nonce 12][ciphertext][tag 16].
 * The header is authenticated too (it is part of the associated data), so a blob
 * relabelled with another generation fails to open rather than decrypting wrongly.
 */
export function sealBlob(key: Uint8Array, generation: number, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt8(FORMAT_V1, 0);
  header.writeUInt32BE(generation, 1);
  nextNonce(header, 5);
  const cipher = createCipheriv("aes-256-gcm", key, header.subarray(5));
  cipher.setAAD(Buffer.concat([header, aad]));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([header, body, cipher.getAuthTag()]);
}

/** Reads the generation a blob was sealed under, without opening it. */
export function blobGeneration(blob: Uint8Array): number {
  if (blob.length < HEADER_BYTES + TAG_BYTES || blob[0] !== FORMAT_V1) {
    throw fail.dataLoss("stored ciphertext has an unknown format");
  }
  return Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength).readUInt32BE(1);
}

/** Opens a blob; any tampering, wrong key or wrong binding is DATA_LOSS, never garbage. */
export function openBlob(key: Uint8Array, blob: Uint8Array, aad: Uint8Array): Uint8Array {
  blobGeneration(blob);
  const buf = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  const header = buf.subarray(0, HEADER_BYTES);
  const tag = buf.subarray(buf.length - TAG_BYTES);
  const body = buf.subarray(HEADER_BYTES, buf.length - TAG_BYTES);
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, header.subarray(5));
    decipher.setAAD(Buffer.concat([header, aad]));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch (cause) {
    throw fail.dataLoss("stored ciphertext failed authentication", cause);
  }
}
