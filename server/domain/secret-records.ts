// Storage layout of secrets: keys, record shapes, associated data and value encoding.
import type { LookupSpec, LookupSummary } from "./lookup-source.js";

/** How many versions stay readable by number. */
export const KEPT_VERSIONS = 10;

/** A secret's value: one text, or a map of fields for grouped credentials. */
export type SecretValue = { kind: "text"; text: string } | { kind: "fields"; fields: Record<string, string> };

/** What is sealed for a version: a value, or a lookup source the server fetches the value from when needed. */
export type StoredValue = SecretValue | { kind: "lookup"; lookup: LookupSpec };

/** Everything stored about a secret except its value (kept in the clear). */
export interface SecretRecord {
  name: string;
  session: string;
  description: string;
  metadata: Record<string, string>;
  /** Agents that may inject the secret; empty = every agent of the tenant. */
  allowedAgents: string[];
  /** Agents that may also read the value with GetSecret; empty = none. */
  agentReaders: string[];
  kind: StoredValue["kind"];
  fieldNames: string[];
  /** For lookups: the source without credentials. */
  lookup?: LookupSummary;
  /** Host patterns the secret belongs to (lowercased); non-empty = injected as a placeholder. */
  egressHosts: string[];
  /** Whether the egress gateway also substitutes in request bodies. */
  egressBody: boolean;
  version: number;
  createdAt: string;
  updatedAt: string;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Key prefix of every secret record of one tenant and session. */
export function recordPrefix(tenant: string, session: string): string {
  return `sec\0${tenant}\0${session}\0`;
}

/** Key of a secret's record. */
export function recordKey(tenant: string, session: string, name: string): string {
  return recordPrefix(tenant, session) + name;
}

/** The versions still kept for a secret at `version`. */
export function keptVersions(version: number): number[] {
  const first = Math.max(1, version - KEPT_VERSIONS + 1);
  return Array.from({ length: version - first + 1 }, (_, i) => first + i);
}

export function encodeRecord(record: SecretRecord): Uint8Array {
  return enc.encode(JSON.stringify(record));
}

/** Records stored before `agentReaders` or egress hosts existed read as having none. */
export function decodeRecord(bytes: Uint8Array): SecretRecord {
  const record = JSON.parse(dec.decode(bytes)) as Omit<SecretRecord, "agentReaders" | "egressHosts" | "egressBody"> &
    Partial<Pick<SecretRecord, "agentReaders" | "egressHosts" | "egressBody">>;
  return { ...record, agentReaders: record.agentReaders ?? [], egressHosts: record.egressHosts ?? [], egressBody: record.egressBody ?? false };
}

export function encodeValue(value: StoredValue): Uint8Array {
  return enc.encode(JSON.stringify(value.kind === "text" ? { t: value.text } : value.kind === "fields" ? { f: value.fields } : { l: value.lookup }));
}

export function decodeValue(bytes: Uint8Array): StoredValue {
  const raw = JSON.parse(dec.decode(bytes)) as { t?: string; f?: Record<string, string>; l?: LookupSpec };
  if (raw.l !== undefined) return { kind: "lookup", lookup: raw.l };
  return raw.f !== undefined ? { kind: "fields", fields: raw.f } : { kind: "text", text: raw.t ?? "" };
}
