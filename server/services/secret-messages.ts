// Translation between vault records and veil.v1 secret messages.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { LookupSpec } from "../domain/lookup-source.js";
import { LOOKUP_LIMITS } from "../domain/lookup-source.js";
import type { SecretRecord, SecretValue, StoredValue } from "../domain/secret-records.js";
import type { SecretWrite } from "../domain/vault.js";
import { type LookupSource, type SecretInput, type SecretMeta, SecretMetaSchema, ValueKind } from "../../gen/veil/v1/secret_pb.js";

const KINDS = { text: ValueKind.TEXT, fields: ValueKind.FIELDS, lookup: ValueKind.LOOKUP } as const;

/** A vault record as the SecretMeta message. */
export function toSecretMeta(record: SecretRecord): SecretMeta {
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
    kind: KINDS[record.kind],
    fieldNames: record.fieldNames,
    egressHosts: record.egressHosts,
    egressBody: record.egressBody,
    ...(record.lookup !== undefined ? { lookup: record.lookup } : {}),
  });
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
