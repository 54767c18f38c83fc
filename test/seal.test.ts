// The sealed blob format: round trip, and every kind of tampering or misplacement is DATA_LOSS.
import { valueAad } from "../server/crypto/sealed-paths.js";
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { VeilError } from "../server/errors.js";
import { blobGeneration, openBlob, sealBlob } from "../server/crypto/blob.js";

const key = randomBytes(32);
const plaintext = new TextEncoder().encode("sk-canary-seal-0123456789");
const aad = valueAad("acme", "", "OPENAI_KEY", 3);

function expectDataLoss(fn: () => unknown) {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(VeilError);
    expect((error as VeilError).kind).toBe("data_loss");
    return;
  }
  throw new Error("expected DATA_LOSS, but the blob opened");
}

describe("sealed blobs", () => {
  it("round-trips and names its generation", () => {
    const blob = sealBlob(key, 7, plaintext, aad);
    expect(blobGeneration(blob)).toBe(7);
    expect(Buffer.from(openBlob(key, blob, aad))).toEqual(Buffer.from(plaintext));
    expect(Buffer.from(blob).includes(Buffer.from(plaintext))).toBe(false);
  });

  it("uses a fresh nonce every time", () => {
    const a = sealBlob(key, 1, plaintext, aad);
    const b = sealBlob(key, 1, plaintext, aad);
    expect(Buffer.from(a).subarray(5, 17)).not.toEqual(Buffer.from(b).subarray(5, 17));
  });

  it("refuses a flipped bit anywhere: header, nonce, ciphertext or tag", () => {
    const blob = sealBlob(key, 1, plaintext, aad);
    for (let i = 0; i < blob.length; i++) {
      const tampered = Uint8Array.from(blob);
      tampered[i]! ^= 0x01;
      expectDataLoss(() => openBlob(key, tampered, aad));
    }
  });

  it("refuses a truncated blob", () => {
    const blob = sealBlob(key, 1, plaintext, aad);
    expectDataLoss(() => openBlob(key, blob.subarray(0, 20), aad));
  });

  it("refuses the wrong key", () => {
    expectDataLoss(() => openBlob(randomBytes(32), sealBlob(key, 1, plaintext, aad), aad));
  });

  const moves = [
    { name: "another tenant", aad: valueAad("other", "", "OPENAI_KEY", 3) },
    { name: "another session", aad: valueAad("acme", "s1", "OPENAI_KEY", 3) },
    { name: "another name", aad: valueAad("acme", "", "GITHUB_TOKEN", 3) },
    { name: "another version", aad: valueAad("acme", "", "OPENAI_KEY", 4) },
  ];
  for (const move of moves) {
    it(`refuses ciphertext moved to ${move.name}`, () => {
      expectDataLoss(() => openBlob(key, sealBlob(key, 1, plaintext, aad), move.aad));
    });
  }
});
