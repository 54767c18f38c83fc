// Translation between vault records and veil.v1 secret messages.
import { create } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import type { LookupSpec } from "../domain/lookup-source.js";
import { LOOKUP_LIMITS } from "../domain/lookup-source.js";
import type { SecretRecord, SecretValue, StoredValue } from "../domain/secret-records.js";
import type { SecretWrite } from "../domain/vault.js";
import { type LookupSource, LookupSummarySchema, type SecretInput, type SecretMeta, ValueKind } from "../../gen/veil/v1/secret_pb.js";

const KINDS = { text: ValueKind.TEXT, fields: ValueKind.FIELDS, lookup: ValueKind.LOOKUP } as const;

/**
 * A vault record as the SecretMeta message, written out as the object `create(SecretMetaSchema, ...)`
 * makes (every field, arrays and map copied). Why: create's reflective init of fourteen fields and two
 * Timestamps was ~1 % of a GetSecret's server CPU; test/secret-messages.test.ts holds the two equal,
 * field for field, so a field added to the schema fails there until it is added here.
 */
export function toSecretMeta(record: SecretRecord): SecretMeta {
  const meta: SecretMeta = {
    $typeName: "veil.v1.SecretMeta",
    name: record.name,
    description: record.description,
    metadata: { ...record.metadata },
    version: BigInt(record.version),
    createdAt: timestampOf(record.createdAt),
    updatedAt: timestampOf(record.updatedAt),
    allowedAgents: record.allowedAgents.slice(),
    kind: KINDS[record.kind],
    session: record.session,
    fieldNames: record.fieldNames.slice(),
    agentReaders: record.agentReaders.slice(),
    egressHosts: record.egressHosts.slice(),
    egressBody: record.egressBody,
  };
  // An unset message field is no property at all, as create leaves it.
  if (record.lookup !== undefined) meta.lookup = create(LookupSummarySchema, record.lookup);
  return meta;
}

/** An ISO time as the Timestamp timestampFromDate makes of it (whole ms). */
function timestampOf(iso: string): Timestamp {
  const ms = new Date(iso).getTime();
  const seconds = Math.floor(ms / 1000);
  return { $typeName: "google.protobuf.Timestamp", seconds: BigInt(seconds), nanos: (ms - seconds * 1000) * 1_000_000 };
}

/** A validated LookupSource as the spec the vault seals (defaults filled in). */
export function toLookupSpec(source: LookupSource): LookupSpec {
  return {
    url: source.url,
    method: source.method === "" ? "GET" : (source.method.toUpperCase() as LookupSpec["method"]),
    headers: { ...source.headers },
    jsonPointer: source.jsonPointer,
    ttlSeconds: source.ttlSeconds,
    timeoutMs: source.timeoutMs || LOOKUP_LIMITS.defaultTimeoutMs,
  };
}

/** A validated SecretInput as a vault write. */
export function toSecretWrite(input: SecretInput): SecretWrite {
  const value: StoredValue | undefined =
    input.text !== undefined
      ? { kind: "text", text: input.text }
      : Object.keys(input.fields).length > 0
        ? { kind: "fields", fields: { ...input.fields } }
        : input.lookup !== undefined
          ? { kind: "lookup", lookup: toLookupSpec(input.lookup) }
          : undefined;
  return {
    name: input.name,
    ...(value !== undefined ? { value } : {}),
    description: input.description,
    metadata: { ...input.metadata },
    ...(input.expectedVersion !== undefined ? { expectedVersion: Number(input.expectedVersion) } : {}),
    allowedAgents: [...input.allowedAgents],
    agentReaders: [...input.agentReaders],
    egressHosts: [...input.egressHosts],
    egressBody: input.egressBody,
  };
}

/** A value as the text/fields pair of GetSecretResponse. */
export function valueFields(value: SecretValue): { text?: string; fields: Record<string, string> } {
  return value.kind === "text" ? { text: value.text, fields: {} } : { fields: value.fields };
}
