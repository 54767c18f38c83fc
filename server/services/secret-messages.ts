// Translation between vault records and veil.v1 secret messages.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { SecretRecord, SecretValue } from "../domain/secret-records.js";
import type { SecretWrite } from "../domain/vault.js";
import { type SecretInput, type SecretMeta, SecretMetaSchema, ValueKind } from "../../gen/veil/v1/secret_pb.js";

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
    kind: record.kind === "text" ? ValueKind.TEXT : ValueKind.FIELDS,
    fieldNames: record.fieldNames,
    egressHosts: record.egressHosts,
    egressBody: record.egressBody,
  });
}

/** A validated SecretInput as a vault write. */
export function toSecretWrite(input: SecretInput): SecretWrite {
  const value: SecretValue | undefined =
    input.text !== undefined
      ? { kind: "text", text: input.text }
      : Object.keys(input.fields).length > 0
        ? { kind: "fields", fields: { ...input.fields } }
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
