// Bearer tokens: minted at random, stored only as SHA-256 hashes, expiring and revocable.
import * as crypto from "node:crypto";
import { createHash, randomBytes } from "node:crypto";
import { KvConflictError, type KvGuard, type KvOp, type KvStore } from "../store/kv.js";
import { fail } from "../errors.js";
import { paginate } from "./page-token.js";
import { authorize, decide } from "./policy.js";
import { DEFAULT_TENANT, type Principal, type Role } from "./principal.js";

/** A token as stored: never its plaintext. */
export interface TokenRecord {
  id: string;
  tenant: string;
  role: Role;
  agent: string;
  createdAt: string;
  expiresAt?: string;
  revoked: boolean;
  description: string;
  operator: boolean;
  /** Agent tokens only: may start conversations with unrestricted network. Absent on older records: false. */
  allowNetwork?: boolean;
}

/** What a new token is for. */
export interface TokenRequest {
  tenant: string;
  role: Role;
  agent: string;
  ttlSeconds: number;
  description: string;
  allowNetwork?: boolean;
}

/** Extra ops a token change carries into its atomic write (the audit trail). */
export type TokenHook = (record: TokenRecord) => KvOp[];

const TOKEN_PREFIX = "veil_";
const enc = new TextEncoder();
const dec = new TextDecoder();

const hashKey = (hash: string) => `tok\0${hash}`;
/** Set once an operator token exists: the first start mints it only when this is absent. */
const OPERATOR_MARKER = "sys\0operator";
const idPrefix = (tenant: string) => `tokid\0${tenant}\0`;

/** Node's one-shot hash where it has one (20.12 and later): every authenticated call hashes its token, and the Hash object cost more than the digest. */
const oneShot = (crypto as { hash?: (algorithm: string, data: string, encoding: "hex") => string }).hash;

function hashToken(token: string): string {
  return oneShot !== undefined ? oneShot("sha256", token, "hex") : createHash("sha256").update(token).digest("hex");
}

function decode(bytes: Uint8Array): TokenRecord {
  return JSON.parse(dec.decode(bytes)) as TokenRecord;
}

/**
 * A cached record is dropped by the store's watch on `tok\0` the moment any server changes it
 * (revocation anywhere reaches every server within the watch's delay, well under a second).
 * This age is only the backstop for a watch that stalls without saying so: no record is trusted
 * longer than the documented revocation bound, whatever the watch does.
 */
const MAX_AGE_MS = 5_000;
const CACHE_ENTRIES = 10_000;
const TOKEN_KEYS = "tok\0";

/** Creates the token registry over a store. Call `close()` to stop its watch. */
export function createTokens(store: KvStore, now: () => Date = () => new Date()) {
  // Every call authenticates: caching the record saves a store read on each one.
  const cache = new Map<string, { record: TokenRecord; at: number }>();
  // Reads start only while the watch is live; `changes` counts invalidations so a read that
  // raced one (it may have read the old record) is not cached after the change was seen.
  let live = true;
  let changes = 0;
  const unwatch = store.watch(TOKEN_KEYS, {
    onChange(change) {
      changes++;
      cache.delete(change.key.slice(TOKEN_KEYS.length));
    },
    onReset(isLive) {
      // Changes may have been missed: forget everything, and read through until they flow again.
      changes++;
      live = isLive;
      cache.clear();
    },
  });
  async function lookup(hash: string): Promise<TokenRecord | undefined> {
    const hit = cache.get(hash);
    if (hit !== undefined && live && Date.now() - hit.at < MAX_AGE_MS) return hit.record;
    const seen = changes;
    const at = Date.now();
    const raw = await store.get(hashKey(hash));
    const record = raw === undefined ? undefined : decode(raw);
    if (cache.size >= CACHE_ENTRIES) cache.clear();
    // Unknown tokens are not cached: guessing must not fill the cache.
    if (record !== undefined && live && changes === seen) cache.set(hash, { record, at });
    return record;
  }

  async function mint(request: TokenRequest, operator: boolean, hook?: TokenHook, guards: KvGuard[] = []) {
    const token = TOKEN_PREFIX + randomBytes(32).toString("base64url");
    const hash = hashToken(token);
    const created = now();
    const record: TokenRecord = {
      id: `tok_${randomBytes(8).toString("hex")}`,
      tenant: request.tenant,
      role: request.role,
      agent: request.agent,
      createdAt: created.toISOString(),
      ...(request.ttlSeconds > 0 ? { expiresAt: new Date(created.getTime() + request.ttlSeconds * 1000).toISOString() } : {}),
      revoked: false,
      description: request.description,
      operator,
      ...(request.role === "agent" && request.allowNetwork === true ? { allowNetwork: true } : {}),
    };
    await store.write([
      { type: "put", key: hashKey(hash), value: enc.encode(JSON.stringify(record)) },
      { type: "put", key: idPrefix(record.tenant) + record.id, value: enc.encode(hash) },
      ...(hook?.(record) ?? []),
    ], guards);
    return { token, record };
  }

  /** Finds a token of `tenant` by id; another tenant's token is NOT_FOUND. */
  async function findById(tenant: string, id: string) {
    const hash = await store.get(idPrefix(tenant) + id);
    const raw = hash === undefined ? undefined : await store.get(hashKey(dec.decode(hash)));
    if (hash === undefined || raw === undefined) throw fail.notFound(`token_id: no token ${id}`);
    return { hash: dec.decode(hash), raw, record: decode(raw) };
  }

  return {
    /** Stops watching the store (at shutdown). */
    close(): void {
      unwatch();
      cache.clear();
    },

    /** Maps a presented bearer token to its principal; unknown, revoked or expired is UNAUTHENTICATED. */
    async authenticate(token: string): Promise<Principal> {
      if (!token.startsWith(TOKEN_PREFIX)) throw fail.unauthenticated("authorization: not a Veil token");
      const record = await lookup(hashToken(token));
      if (record === undefined) throw fail.unauthenticated("authorization: unknown token");
      if (record.revoked) throw fail.unauthenticated("authorization: token revoked");
      if (record.expiresAt !== undefined && Date.parse(record.expiresAt) <= now().getTime()) {
        throw fail.unauthenticated("authorization: token expired");
      }
      return {
        tenant: record.tenant,
        role: record.role,
        ...(record.role === "agent" ? { agent: record.agent } : {}),
        ...(record.allowNetwork === true ? { allowNetwork: true } : {}),
        tokenId: record.id,
        operator: record.operator,
      };
    },

    /** Mints a token. A tenant admin mints only for its own tenant; the operator for any. */
    async create(principal: Principal, request: TokenRequest, hook?: TokenHook) {
      const tenant = request.tenant || principal.tenant;
      authorize(principal, "token.create", { tenant });
      return mint({ ...request, tenant }, false, hook);
    },

    /** Lists a tenant's tokens (the operator may name any tenant). */
    async list(principal: Principal, options: { tenant: string; pageSize: number; pageToken: string }) {
      const tenant = options.tenant || principal.tenant;
      authorize(principal, "token.list", { tenant });
      const page = await paginate(store, idPrefix(tenant), { ...options, namePrefix: "" }, (hash) => hash);
      const raws = await store.getMany(page.items.map((h) => hashKey(dec.decode(h))));
      const records = raws.filter((r): r is Uint8Array => r !== undefined).map(decode);
      return { records, nextPageToken: page.nextPageToken };
    },

    /**
     * Revokes a token: it is UNAUTHENTICATED from the next call on. An operator token is
     * revoked only by an operator token (itself included): a tenant admin of `default` must
     * not lock out the one token that administers every tenant. Its loss is recovered
     * offline with `resetOperator`.
     */
    async revoke(principal: Principal, tokenId: string, hook?: TokenHook): Promise<TokenRecord> {
      // Before the lookup: an agent token learns nothing about which ids exist.
      authorize(principal, "token.revoke");
      const found = await findTokenForAdmin(principal, tokenId);
      authorize(principal, "token.revoke", found.record);
      const record = { ...found.record, revoked: true };
      await store.write(
        [{ type: "put", key: hashKey(found.hash), value: enc.encode(JSON.stringify(record)) }, ...(hook?.(record) ?? [])],
        [{ key: hashKey(found.hash), value: found.raw }],
      );
      cache.delete(found.hash);
      return record;
    },

    /**
     * Creates the operator token on the first start of a data dir. Returns its
     * plaintext once, or undefined when the data dir already has one.
     */
    async bootstrapOperator(): Promise<string | undefined> {
      if ((await store.get(OPERATOR_MARKER)) !== undefined) return undefined;
      try {
        const { token } = await mint(
          { tenant: DEFAULT_TENANT, role: "admin", agent: "", ttlSeconds: 0, description: "operator (bootstrap)" },
          true,
          (record) => [{ type: "put", key: OPERATOR_MARKER, value: enc.encode(record.id) }],
          // Guarded: of servers starting at once on one empty store, exactly one mints it.
          [{ key: OPERATOR_MARKER, value: undefined }],
        );
        return token;
      } catch (error) {
        if (error instanceof KvConflictError) return undefined;
        throw error;
      }
    },

    /**
     * Offline recovery (server stopped): revokes every operator token and mints a new one,
     * in one atomic write with whatever `hook` adds. Returns the new plaintext once.
     */
    async resetOperator(hook?: (fresh: TokenRecord, revoked: TokenRecord[]) => KvOp[]) {
      const revoked: { hash: string; record: TokenRecord }[] = [];
      for await (const [key, raw] of store.scan({ gte: "tok\0", lt: "tok\u0001" })) {
        const record = decode(raw);
        if (record.operator && !record.revoked) revoked.push({ hash: key.slice("tok\0".length), record: { ...record, revoked: true } });
      }
      const ops: KvOp[] = revoked.map(({ hash, record }) => ({ type: "put", key: hashKey(hash), value: enc.encode(JSON.stringify(record)) }));
      const { token, record } = await mint(
        { tenant: DEFAULT_TENANT, role: "admin", agent: "", ttlSeconds: 0, description: "operator (reset offline)" },
        true,
        (fresh) => [
          ...ops,
          { type: "put", key: OPERATOR_MARKER, value: enc.encode(fresh.id) },
          ...(hook?.(fresh, revoked.map((r) => r.record)) ?? []),
        ],
      );
      for (const { hash } of revoked) cache.delete(hash);
      return { token, record, revoked: revoked.map((r) => r.record) };
    },
  };

  /** The operator may revoke any tenant's token: it finds it by scanning tenants' id indexes. */
  async function findTokenForAdmin(principal: Principal, tokenId: string) {
    try {
      return await findById(principal.tenant, tokenId);
    } catch (error) {
      if (decide(principal, "tenant.any") !== "ok") throw error;
      for await (const [key, hash] of store.scan({ gte: "tokid\0", lt: "tokid\u0001" })) {
        if (key.endsWith(`\0${tokenId}`)) {
          const raw = await store.get(hashKey(dec.decode(hash)));
          if (raw !== undefined) return { hash: dec.decode(hash), raw, record: decode(raw) };
        }
      }
      throw error;
    }
  }
}

/** The token registry's operations. */
export type Tokens = ReturnType<typeof createTokens>;
