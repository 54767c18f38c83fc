// The vault: secrets sealed per tenant, versioned, check-and-set, granted to agents.
import { checkWriteLimits, type KvOp, type KvStore, retryOnConflict } from "../store/kv.js";
import { normalizeHostPattern } from "./egress-binding.js";
import { fail } from "../errors.js";
import type { Barrier } from "../crypto/barrier.js";
import { valueKey } from "../crypto/sealed-paths.js";
import { summarize } from "./lookup-source.js";
import { paginate } from "./page-token.js";
import { authorize, decide } from "./policy.js";
import type { Principal } from "./principal.js";
import {
  decodeRecord,
  decodeValue,
  encodeRecord,
  encodeValue,
  keptVersions,
  KEPT_VERSIONS,
  recordKey,
  recordPrefix,
  type SecretRecord,
  type StoredValue,
} from "./secret-records.js";

/**
 * One secret to write; without `value` the stored value is kept and only the rest changes.
 * Everything else replaces what is stored, on a keep-value update too: grants not sent are
 * cleared (no `allowedAgents` = every agent injects, no `agentReaders` = no agent reads).
 */
export interface SecretWrite {
  name: string;
  value?: StoredValue;
  description: string;
  metadata: Record<string, string>;
  expectedVersion?: number;
  allowedAgents: string[];
  /** Absent: no agent reads (fails closed). */
  agentReaders?: string[];
  /** Host patterns (validated); absent or empty: injected as its value. */
  egressHosts?: string[];
  egressBody?: boolean;
}

/** A page of secret records. */
export interface SecretPage {
  records: SecretRecord[];
  nextPageToken: string;
}

/** Extra work a write carries into its atomic batch (the audit trail uses it). */
export type WriteHook = (records: SecretRecord[]) => KvOp[];

/** Creates the vault over a store and the crypto barrier that seals its values. */
export function createVault(store: KvStore, barrier: Barrier) {
  async function readRecord(tenant: string, session: string, name: string): Promise<SecretRecord | undefined> {
    const raw = await store.get(recordKey(tenant, session, name));
    return raw === undefined ? undefined : decodeRecord(raw);
  }

  async function openVersion(tenant: string, record: SecretRecord, version: number): Promise<StoredValue> {
    const path = valueKey(tenant, record.session, record.name, version);
    const blob = await store.get(path);
    if (blob === undefined) throw fail.dataLoss(`secret ${record.name}: version ${version} has no stored ciphertext`);
    return decodeValue(await barrier.open(path, blob));
  }

  /** Plans one attempt of a batch against the records as they are now. */
  async function planWrites(principal: Principal, session: string, writes: readonly SecretWrite[]) {
    const tenant = principal.tenant;
    const keys = writes.map((w) => recordKey(tenant, session, w.name));
    const currentRaw = await store.getMany(keys);
    const now = new Date().toISOString();
    const ops: KvOp[] = [];
    const records: SecretRecord[] = [];
    for (const [i, write] of writes.entries()) {
      const raw = currentRaw[i];
      const current = raw === undefined ? undefined : decodeRecord(raw);
      const currentVersion = current?.version ?? 0;
      if (write.expectedVersion !== undefined && write.expectedVersion !== currentVersion) {
        throw fail.aborted(
          `secrets[${i}].expected_version: expected ${write.expectedVersion}, the stored version is ${currentVersion}`,
        );
      }
      if (write.value === undefined && current === undefined) {
        throw fail.notFound(`secrets[${i}]: no secret named ${write.name} to update; send text or fields to create it`);
      }
      const value = write.value ?? (await openVersion(tenant, current!, current!.version));
      const record: SecretRecord = {
        name: write.name,
        session,
        description: write.description,
        metadata: write.metadata,
        allowedAgents: [...new Set(write.allowedAgents)].sort(),
        agentReaders: [...new Set(write.agentReaders ?? [])].sort(),
        kind: value.kind,
        fieldNames: value.kind === "fields" ? Object.keys(value.fields).sort() : [],
        ...(value.kind === "lookup" ? { lookup: summarize(value.lookup) } : {}),
        egressHosts: [...new Set((write.egressHosts ?? []).map(normalizeHostPattern))].sort(),
        egressBody: write.egressBody ?? false,
        version: currentVersion + 1,
        createdAt: current?.createdAt ?? now,
        updatedAt: now,
      };
      ops.push({ type: "put", key: keys[i]!, value: encodeRecord(record) });
      ops.push(barrier.sealOp(valueKey(tenant, session, write.name, record.version), encodeValue(value)));
      const expired = record.version - KEPT_VERSIONS;
      if (expired >= 1) ops.push({ type: "del", key: valueKey(tenant, session, write.name, expired) });
      records.push(record);
    }
    const guards = keys.map((key, i) => ({ key, value: currentRaw[i] }));
    return { ops, guards, records };
  }

  return {
    /**
     * Writes a batch atomically and durably. Concurrent writers to one secret
     * are serialized by the store's guards: the loser re-reads and retries, so
     * no update is lost and no two writes get the same version.
     */
    async setSecrets(principal: Principal, session: string, writes: readonly SecretWrite[], hook?: WriteHook): Promise<SecretRecord[]> {
      authorize(principal, "secret.write");
      const seen = new Set<string>();
      for (const [i, w] of writes.entries()) {
        if (seen.has(w.name)) throw fail.invalid(`secrets[${i}].name: ${w.name} appears more than once in the batch`);
        seen.add(w.name);
      }
      return retryOnConflict(async () => {
        const plan = await planWrites(principal, session, writes);
        const ops = [...plan.ops, ...(hook?.(plan.records) ?? [])];
        // One call is one atomic write: beyond the store's limits it is refused whole, naming the batch.
        checkWriteLimits(store.limits, ops, plan.guards, `secrets (${writes.length} in one call)`);
        await store.write(ops, plan.guards);
        return plan.records;
      });
    },

    /** Lists records of one scope in name order; agents see only what is granted to them. */
    async listSecrets(principal: Principal, session: string, options: { pageSize: number; pageToken: string; namePrefix: string }): Promise<SecretPage> {
      const prefix = recordPrefix(principal.tenant, session);
      const page = await paginate(store, prefix, options, (raw) => {
        const record = decodeRecord(raw);
        return decide(principal, "secret.list", record) === "ok" ? record : undefined;
      });
      return { records: page.items, nextPageToken: page.nextPageToken };
    },

    /**
     * Reads a secret (latest or a kept version). Another tenant's secret, or one not granted
     * to the calling agent, is NOT_FOUND like a missing one; an agent granted injection but
     * not an agent reader is PERMISSION_DENIED.
     */
    async getSecret(principal: Principal, session: string, name: string, version = 0): Promise<{ record: SecretRecord; value: StoredValue; version: number }> {
      const record = await readRecord(principal.tenant, session, name);
      if (record === undefined) throw fail.notFound(`name: no secret named ${name}`);
      authorize(principal, "secret.read", record, "name");
      const wanted = version === 0 ? record.version : version;
      if (!keptVersions(record.version).includes(wanted)) {
        throw fail.notFound(`version: ${name} has no version ${wanted} (versions ${keptVersions(record.version).join(", ")} are kept)`);
      }
      return { record, value: await openVersion(principal.tenant, record, wanted), version: wanted };
    },

    /** Removes every version of a secret for good. */
    async deleteSecret(principal: Principal, session: string, name: string, hook?: WriteHook): Promise<SecretRecord> {
      authorize(principal, "secret.delete");
      const key = recordKey(principal.tenant, session, name);
      return retryOnConflict(async () => {
        const raw = await store.get(key);
        if (raw === undefined) throw fail.notFound(`name: no secret named ${name}`);
        const record = decodeRecord(raw);
        const ops: KvOp[] = [{ type: "del", key }];
        for (const v of keptVersions(record.version)) ops.push({ type: "del", key: valueKey(principal.tenant, session, name, v) });
        await store.write([...ops, ...(hook?.([record]) ?? [])], [{ key, value: raw }]);
        return record;
      });
    },

    /**
     * Resolves names for a conversation: the session's secret wins over the
     * tenant-wide one. Every name must exist and be granted, or nothing resolves.
     * `where` names the request field each name came from (default `secrets[i]`).
     */
    async resolve(
      principal: Principal,
      session: string,
      names: readonly string[],
      where: (i: number) => string = (i) => `secrets[${i}]`,
    ): Promise<Map<string, { record: SecretRecord; value: StoredValue }>> {
      const resolved = new Map<string, { record: SecretRecord; value: StoredValue }>();
      for (const [i, name] of names.entries()) {
        const record = (session !== "" ? await readRecord(principal.tenant, session, name) : undefined) ?? (await readRecord(principal.tenant, "", name));
        if (record === undefined) throw fail.notFound(`${where(i)}: no secret named ${name}`);
        authorize(principal, "secret.inject", record, where(i));
        resolved.set(name, { record, value: await openVersion(principal.tenant, record, record.version) });
      }
      return resolved;
    },
  };
}

/** The vault's operations. */
export type Vault = ReturnType<typeof createVault>;
