// toSecretMeta writes the SecretMeta message out by hand: it must be exactly what protobuf-es's create() makes, field for field.
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { SecretMetaSchema, ValueKind } from "../gen/veil/v1/secret_pb.js";
import type { SecretRecord } from "../server/domain/secret-records.js";
import { toSecretMeta } from "../server/services/secret-messages.js";

/** The message as create() makes it from the record (what toSecretMeta did before it was written out). */
function created(record: SecretRecord) {
  return create(SecretMetaSchema, {
    name: record.name,
    session: record.session,
    description: record.description,
    metadata: record.metadata,
    version: BigInt(record.version),
    createdAt: timestampFromDate(new Date(record.createdAt)),
    updatedAt: timestampFromDate(new Date(record.updatedAt)),
    allowedAgents: record.allowedAgents,
    agentReaders: record.agentReaders,
    kind: { text: ValueKind.TEXT, fields: ValueKind.FIELDS, lookup: ValueKind.LOOKUP }[record.kind],
    fieldNames: record.fieldNames,
    egressHosts: record.egressHosts,
    egressBody: record.egressBody,
    ...(record.lookup !== undefined ? { lookup: record.lookup } : {}),
  });
}

const base = {
  name: "STRIPE_KEY",
  session: "",
  description: "live key",
  metadata: { team: "payments", env: "prod" },
  version: 7,
  createdAt: "2026-11-30T10:00:00.123Z",
  updatedAt: "2026-12-01T11:22:33.999Z",
  allowedAgents: ["deployer"],
  agentReaders: ["reader-1", "reader-2"],
  kind: "fields",
  fieldNames: ["user", "password"],
  egressHosts: ["api.stripe.com"],
  egressBody: true,
} as unknown as SecretRecord;

describe("toSecretMeta", () => {
  const records: [string, SecretRecord][] = [
    ["a fields secret with every list set", base],
    ["a text secret with nothing optional", { ...base, kind: "text", metadata: {}, allowedAgents: [], agentReaders: [], fieldNames: [], egressHosts: [], egressBody: false, description: "" } as unknown as SecretRecord],
    ["a lookup secret", { ...base, kind: "lookup", fieldNames: [], lookup: { method: "GET", origin: "https://vault.example.com", jsonPointer: "/data/key", ttlSeconds: 60, timeoutMs: 5000 } } as unknown as SecretRecord],
    ["a session secret created before 1970", { ...base, session: "s-1", createdAt: "1969-12-31T23:59:59.500Z" } as unknown as SecretRecord],
  ];
  for (const [what, record] of records) {
    it(`${what}: the same message create() makes, and the same bytes`, () => {
      const meta = toSecretMeta(record);
      expect(meta).toStrictEqual(created(record));
      // Every field but an unset message is there (a field added to the schema and not to toSecretMeta fails above too).
      for (const field of SecretMetaSchema.fields) if (field.fieldKind !== "message") expect(Object.keys(meta)).toContain(field.localName);
      expect(toBinary(SecretMetaSchema, meta)).toEqual(toBinary(SecretMetaSchema, created(record)));
    });
  }

  it("copies the record's lists and map: a change to the message leaves the (cached) record as it was", () => {
    const record = structuredClone(base);
    const meta = toSecretMeta(record);
    meta.allowedAgents.push("intruder");
    meta.metadata.team = "changed";
    meta.egressHosts.length = 0;
    expect(record).toEqual(base);
  });
});
