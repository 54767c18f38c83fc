// The hand-written GetSecretResponse encoder writes exactly what protobuf-es writes, and cannot fall behind the schema.
import { create, type DescMessage, fromBinary, toBinary } from "@bufbuild/protobuf";
import { TimestampSchema } from "@bufbuild/protobuf/wkt";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { GetSecretResponseSchema, LookupSummarySchema, SecretMetaSchema } from "../gen/veil/v1/secret_pb.js";
import { encodeGetSecretResponse } from "../server/rpc/secret-wire.js";

/** Strings that reach every length form: empty, one-byte and two-byte lengths, multi-byte UTF-8 and a lone surrogate. */
const text = fc.oneof(
  fc.constant(""),
  fc.string({ maxLength: 50 }),
  fc.string({ unit: "grapheme", maxLength: 60 }),
  fc.string({ minLength: 120, maxLength: 400 }),
  fc.constantFrom("\ud800", "é", "密钥", "🔑 key", "x".repeat(42), "é".repeat(42), "😀".repeat(21), "x".repeat(127), "x".repeat(128), "x".repeat(20_000)),
);
const stringMap = fc.dictionary(fc.oneof(text, fc.constantFrom("0", "1", "10", "-1")), text, { maxKeys: 4 });
const uint64 = fc.oneof(fc.constant(0n), fc.bigInt({ min: 1n, max: 300n }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }));
const int64 = fc.oneof(fc.constant(0n), fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }));
const uint32 = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 0xffff_ffff }));
const timestamp = fc.record({ seconds: int64, nanos: fc.oneof(fc.constant(0), fc.integer({ min: -999_999_999, max: 999_999_999 })) }).map((t) => create(TimestampSchema, t));
const lookup = fc.record({ method: text, origin: text, jsonPointer: text, ttlSeconds: uint32, timeoutMs: uint32 }).map((l) => create(LookupSummarySchema, l));
const meta = fc
  .record(
    {
      name: text,
      description: text,
      metadata: stringMap,
      version: uint64,
      createdAt: timestamp,
      updatedAt: timestamp,
      allowedAgents: fc.array(text, { maxLength: 3 }),
      kind: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })),
      session: text,
      fieldNames: fc.array(text, { maxLength: 3 }),
      agentReaders: fc.array(text, { maxLength: 3 }),
      egressHosts: fc.array(text, { maxLength: 3 }),
      egressBody: fc.boolean(),
      lookup,
    },
    { requiredKeys: ["name", "version"] },
  )
  .map((m) => create(SecretMetaSchema, m));
const response = fc
  .record({ meta, text, fields: stringMap }, { requiredKeys: [] })
  .map((r) => create(GetSecretResponseSchema, r));

describe("GetSecretResponse hand encoder", () => {
  it("writes the bytes toBinary writes, for any message", () => {
    fc.assert(
      fc.property(response, (message) => {
        const bytes = encodeGetSecretResponse(message);
        expect(Buffer.from(bytes).toString("hex")).toBe(Buffer.from(toBinary(GetSecretResponseSchema, message)).toString("hex"));
      }),
      { numRuns: 3000 },
    );
  });

  it("writes a typical read's reply whole (two timestamps, a map, the value as text)", () => {
    const message = create(GetSecretResponseSchema, {
      meta: create(SecretMetaSchema, {
        name: "STRIPE_KEY",
        description: "payments",
        metadata: { team: "billing", "0": "first" },
        version: 3n,
        createdAt: create(TimestampSchema, { seconds: 1_764_590_000n, nanos: 123_000_000 }),
        updatedAt: create(TimestampSchema, { seconds: 1_764_590_500n }),
        kind: 1,
      }),
      text: "sk_live_0123456789",
    });
    const bytes = encodeGetSecretResponse(message);
    expect(Buffer.from(bytes)).toEqual(Buffer.from(toBinary(GetSecretResponseSchema, message)));
    expect(fromBinary(GetSecretResponseSchema, bytes)).toEqual(message);
  });

  it("leaves a message carrying unknown fields to toBinary, which keeps them", () => {
    const message = create(GetSecretResponseSchema, { meta: create(SecretMetaSchema, { name: "A" }), text: "v" });
    message.$unknown = [{ no: 99, wireType: 0, data: new Uint8Array([7]) }];
    expect(encodeGetSecretResponse(message)).toEqual(toBinary(GetSecretResponseSchema, message));
  });

  // A field added to any of these messages must be added to the encoder (and to the generators above).
  it.each<[DescMessage, string[]]>([
    [GetSecretResponseSchema, ["1 meta message", "2 text scalar", "3 fields map"]],
    [
      SecretMetaSchema,
      [
        "1 name scalar",
        "2 description scalar",
        "3 metadata map",
        "4 version scalar",
        "5 created_at message",
        "6 updated_at message",
        "7 allowed_agents list",
        "8 kind enum",
        "9 session scalar",
        "10 field_names list",
        "11 agent_readers list",
        "12 egress_hosts list",
        "13 egress_body scalar",
        "14 lookup message",
      ],
    ],
    [LookupSummarySchema, ["1 method scalar", "2 origin scalar", "3 json_pointer scalar", "4 ttl_seconds scalar", "5 timeout_ms scalar"]],
    [TimestampSchema, ["1 seconds scalar", "2 nanos scalar"]],
  ])("knows every field of %s", (schema, fields) => {
    expect(schema.fields.map((f) => `${f.number} ${f.name} ${f.fieldKind}`)).toEqual(fields);
  });
});
