// How a secret's metadata reads in the console: its kind and who may use it.
import { type SecretMeta, ValueKind } from "../../gen/veil/v1/secret_pb.js";

export function kindText(meta: SecretMeta): string {
  if (meta.kind === ValueKind.FIELDS) return `Key/value pairs (${meta.fieldNames.join(", ")})`;
  if (meta.kind === ValueKind.TEXT) return "Single value";
  if (meta.kind === ValueKind.LOOKUP) return "Lookup (fetched when needed)";
  return "Other";
}

export function accessText(meta: SecretMeta): string {
  return meta.allowedAgents.length === 0 ? "All agents" : meta.allowedAgents.join(", ");
}

/** Everything but the value, as SetSecrets takes it: an access change or a new value keeps the rest. */
export function keptMeta(meta: SecretMeta) {
  return {
    name: meta.name,
    description: meta.description,
    metadata: { ...meta.metadata },
    allowedAgents: [...meta.allowedAgents],
    agentReaders: [...meta.agentReaders],
    egressHosts: [...meta.egressHosts],
    egressBody: meta.egressBody,
  };
}
