// etcd implementation of KvStore: guarded writes as one Txn each (grouped while they fit), ranged scans, watches, leases.
import { randomBytes } from "node:crypto";
import { CompareResult, CompareTarget, Etcd3, type ICompare, type IOptions, type IRequestOp, type IResponseHeader, type ITxnRequest, type Lease, SortOrder, SortTarget } from "etcd3";
import { VeilError } from "../errors.js";
import { etcdError, isTransient } from "./etcd-errors.js";
import { checkWriteLimits, type KvEphemeral, type KvGuard, type KvLimits, type KvOp, type KvRange, type KvSnapshot, type KvStore, type KvWatchHandlers, KvConflictError, writeSize } from "./kv.js";
import { LocalLocks } from "./local-coordination.js";

/** etcd's defaults (--max-txn-ops, --max-request-bytes). */
export const ETCD_DEFAULT_MAX_TXN_OPS = 128;
export const ETCD_DEFAULT_MAX_REQUEST_BYTES = 1.5 * 1024 * 1024;

/** How to reach etcd and what its members accept. */
export interface EtcdStoreOptions {
  /** Client URLs of the members (http:// or https://). */
  endpoints: readonly string[];
  /** Every key of this deployment lives under it (default "veil/"). */
  prefix?: string;
  /** PEM: the CA etcd's certificates chain to, and a client certificate and key for mutual TLS. */
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  auth?: { username: string; password: string };
  /** The members' --max-txn-ops (default 128). */
  maxTxnOps?: number;
  /** The members' --max-request-bytes (default 1.5 MiB). */
  maxRequestBytes?: number;
  /** How long a call may keep retrying while etcd is unreachable or electing a leader (default 10 s). */
  retryMs?: number;
  /** TTL of the lease holding locks and ephemeral keys: how long they outlive a crashed server (default 10 s). */
  leaseTtlSeconds?: number;
  /** Called for each committed Txn with how many writes it grouped. */
  onBatch?: (writes: number) => void;
}

/** A policy that runs the call once (etcd3 would otherwise retry writes three times, out of our sight). */
const NO_RETRY = { execute: <T>(fn: (context: unknown) => T | Promise<T>) => Promise.resolve().then(() => fn({ signal: new AbortController().signal })) } as unknown as NonNullable<
  NonNullable<IOptions["faultHandling"]>["global"]
>;

/** Keys per range page: small enough for a bounded response, large enough that a scan is few round trips. */
const PAGE_KEYS = 256;
const ZERO = Buffer.from([0]);

/**
 * The limits of one write, from the members' settings. Each key travels with the prefix, and
 * each op and compare carries protobuf framing (tags, lengths, the op wrapper): the margin keeps
 * the whole request under --max-request-bytes however the write is shaped.
 */
export function etcdLimits(maxTxnOps: number, maxRequestBytes: number, prefix: string): KvLimits {
  const perItem = Buffer.byteLength(prefix) + 3 + 32;
  const margin = 2 * maxTxnOps * perItem + 4096;
  return { maxOps: maxTxnOps, maxGuards: maxTxnOps, maxBytes: Math.max(1024, maxRequestBytes - margin) };
}

/** The key just past every key starting with `prefix` (etcd's range_end for a prefix). */
function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  return ZERO;
}

/** A Uint8Array view of a Buffer (what LevelDB and memory hand out), without copying. */
function view(buf: Buffer): Uint8Array {
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The last op per key: etcd refuses a Txn that touches one key twice, and the last op is what LevelDB leaves. */
function lastOpPerKey(ops: readonly KvOp[]): readonly KvOp[] {
  const keys = new Set(ops.map((o) => o.key));
  if (keys.size === ops.length) return ops;
  const last = new Map<string, KvOp>();
  for (const op of ops) {
    last.delete(op.key);
    last.set(op.key, op);
  }
  return [...last.values()];
}

interface PendingWrite {
  ops: readonly KvOp[];
  guards: readonly KvGuard[];
  size: { ops: number; guards: number; bytes: number };
  keys: Set<string>;
  resolve: () => void;
  reject: (error: unknown) => void;
}

interface PendingRead {
  keys: readonly string[];
  resolve: (values: (Uint8Array | undefined)[]) => void;
  reject: (error: unknown) => void;
}

/** Connects to etcd, checks that it answers (and accepts the credentials), and returns the store. */
export async function openEtcdStore(options: EtcdStoreOptions): Promise<KvStore> {
  if (options.endpoints.length === 0) throw new VeilError("failed_precondition", "store: etcd needs at least one endpoint (--etcd-endpoints)");
  const store = new EtcdStore(options);
  try {
    await store.ping();
  } catch (error) {
    await store.close().catch(() => {});
    const mapped = etcdError(error);
    throw new VeilError(mapped.kind, `${mapped.message} (endpoints ${options.endpoints.join(",")})`, { cause: error });
  }
  return store;
}

class EtcdStore implements KvStore {
  readonly limits: KvLimits;
  private readonly client: Etcd3;
  private readonly data: Buffer;
  private readonly dataEnd: Buffer;
  private readonly lockPrefix: Buffer;
  private readonly retryMs: number;
  private readonly leaseTtl: number;
  private queue: PendingWrite[] = [];
  private flushing: Promise<void> | undefined;
  private reads: PendingRead[] = [];
  private readonly locks = new LocalLocks();
  private readonly unwatchers = new Set<() => void>();
  private readonly ephemerals = new Map<string, Buffer>();
  private lease: Promise<{ lease: Lease; id: string }> | undefined;
  /** The newest revision any response showed: a watch starts after it, so it misses nothing this process saw. */
  private revision = 0;
  private closed = false;

  constructor(private readonly options: EtcdStoreOptions) {
    const prefix = options.prefix ?? "veil/";
    this.limits = etcdLimits(options.maxTxnOps ?? ETCD_DEFAULT_MAX_TXN_OPS, options.maxRequestBytes ?? ETCD_DEFAULT_MAX_REQUEST_BYTES, prefix);
    this.data = Buffer.from(`${prefix}kv/`);
    this.dataEnd = prefixEnd(this.data);
    this.lockPrefix = Buffer.from(`${prefix}lock/`);
    this.retryMs = options.retryMs ?? 10_000;
    this.leaseTtl = options.leaseTtlSeconds ?? 10;
    const clientOptions: IOptions = {
      hosts: [...options.endpoints],
      dialTimeout: 3000,
      // A page of large values may exceed grpc's 4 MiB default; etcd bounds requests, not range responses.
      grpcOptions: { "grpc.max_receive_message_length": -1 },
      defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + 5000 }),
      // No hidden retries inside etcd3: call() retries, and must know when a write's outcome became uncertain.
      faultHandling: { global: NO_RETRY },
      ...(options.auth !== undefined ? { auth: { ...options.auth } } : {}),
    };
    if (options.tls?.ca !== undefined || options.tls?.cert !== undefined) {
      clientOptions.credentials = {
        rootCertificate: options.tls.ca as Buffer,
        ...(options.tls.key !== undefined ? { privateKey: options.tls.key } : {}),
        ...(options.tls.cert !== undefined ? { certChain: options.tls.cert } : {}),
      };
    }
    this.client = new Etcd3(clientOptions);
  }

  private key(key: string): Buffer {
    return Buffer.concat([this.data, Buffer.from(key, "utf8")]);
  }

  private unkey(key: Buffer): string {
    return key.subarray(this.data.length).toString("utf8");
  }

  private saw(header: IResponseHeader | undefined) {
    const revision = Number(header?.revision ?? 0);
    if (revision > this.revision) this.revision = revision;
  }

  /**
   * Runs one etcd call, retrying while etcd is unreachable or electing a leader (a member
   * killed, a partition healing), up to retryMs; then the failure is UNAVAILABLE naming etcd.
   */
  private async call<T>(fn: () => Promise<T>, retryMs = this.retryMs, onRetry?: () => void): Promise<T> {
    const start = Date.now();
    for (let delay = 50; ; delay = Math.min(delay * 2, 1000)) {
      if (this.closed) throw new VeilError("unavailable", "store: closed");
      try {
        return await fn();
      } catch (error) {
        if (!isTransient(error) || Date.now() - start + delay > retryMs) throw etcdError(error);
        onRetry?.();
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  /** One linearizable read of the prefix: etcd answers, with a leader, and takes the credentials. */
  async ping(): Promise<void> {
    const res = await this.call(() => this.client.kv.range({ key: this.data, range_end: this.dataEnd, count_only: true }), Math.min(this.retryMs, 5000));
    this.saw(res.header);
  }

  async get(key: string) {
    return (await this.getMany([key]))[0];
  }

  /** Reads of the same tick share read-only Txns of up to maxOps ranges each: one round trip instead of one per key. */
  getMany(keys: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    if (keys.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      if (this.reads.push({ keys, resolve, reject }) === 1) queueMicrotask(() => void this.flushReads());
    });
  }

  private async flushReads() {
    const reads = this.reads;
    this.reads = [];
    try {
      const unique = [...new Set(reads.flatMap((r) => r.keys))];
      const found = new Map<string, Uint8Array>();
      const chunks: string[][] = [];
      for (let i = 0; i < unique.length; i += this.limits.maxOps) chunks.push(unique.slice(i, i + this.limits.maxOps));
      await Promise.all(
        chunks.map(async (chunk) => {
          const success: IRequestOp[] = chunk.map((k) => ({ request_range: { key: this.key(k) } }));
          const res = await this.call(() => this.client.kv.txn({ success }));
          this.saw(res.header);
          res.responses.forEach((r, i) => {
            const kv = r.response_range?.kvs[0];
            if (kv !== undefined) found.set(chunk[i]!, view(kv.value));
          });
        }),
      );
      for (const r of reads) r.resolve(r.keys.map((k) => found.get(k)));
    } catch (error) {
      for (const r of reads) r.reject(etcdError(error));
    }
  }

  write(ops: readonly KvOp[], guards: readonly KvGuard[] = []): Promise<void> {
    try {
      if (this.closed) throw new VeilError("unavailable", "store: closed");
      checkWriteLimits(this.limits, ops, guards);
    } catch (error) {
      return Promise.reject(error);
    }
    if (ops.length === 0 && guards.length === 0) return Promise.resolve();
    const unique = lastOpPerKey(ops);
    const keys = new Set([...unique.map((o) => o.key), ...guards.map((g) => g.key)]);
    return new Promise((resolve, reject) => {
      this.queue.push({ ops: unique, guards, size: writeSize(unique, guards), keys, resolve, reject });
      this.flushing ??= this.flushLoop();
    });
  }

  /**
   * Group commit: while one Txn is in flight, later writes queue; the queue then goes out as
   * few Txns as the limits allow, each grouping writes whose keys do not overlap (etcd refuses
   * a key twice in one Txn, and an overlap means one of them depends on the other).
   */
  private async flushLoop(): Promise<void> {
    while (this.queue.length > 0) {
      const pending = this.queue;
      this.queue = [];
      for (const group of this.groups(pending)) await this.commit(group);
    }
    this.flushing = undefined;
  }

  private groups(pending: PendingWrite[]): PendingWrite[][] {
    const groups: PendingWrite[][] = [];
    let group: PendingWrite[] = [];
    let keys = new Set<string>();
    let size = { ops: 0, guards: 0, bytes: 0 };
    for (const w of pending) {
      const fits =
        size.ops + w.size.ops <= this.limits.maxOps &&
        size.guards + w.size.guards <= this.limits.maxGuards &&
        size.bytes + w.size.bytes <= this.limits.maxBytes &&
        ![...w.keys].some((k) => keys.has(k));
      if (!fits && group.length > 0) {
        groups.push(group);
        group = [];
        keys = new Set();
        size = { ops: 0, guards: 0, bytes: 0 };
      }
      group.push(w);
      for (const k of w.keys) keys.add(k);
      size = { ops: size.ops + w.size.ops, guards: size.guards + w.size.guards, bytes: size.bytes + w.size.bytes };
    }
    if (group.length > 0) groups.push(group);
    return groups;
  }

  /**
   * Commits a group as one Txn, durable once etcd's quorum has it. When the merged compares
   * fail, some write's guard did not hold: the writes go again one by one, so only the real
   * loser gets KvConflictError and the others land (each whole, none half).
   */
  private async commit(group: PendingWrite[], ambiguous = false): Promise<void> {
    let retried = ambiguous;
    try {
      const res = await this.call(() => this.client.kv.txn(this.txnOf(group)), this.retryMs, () => {
        retried = true;
      });
      this.saw(res.header);
      if (res.succeeded) {
        this.options.onBatch?.(group.length);
        for (const w of group) w.resolve();
        return;
      }
    } catch (error) {
      for (const w of group) w.reject(etcdError(error));
      return;
    }
    if (group.length > 1) {
      for (const w of group) await this.commit([w], retried);
      return;
    }
    const w = group[0]!;
    try {
      if (retried && (await this.landed(w))) w.resolve();
      else w.reject(new KvConflictError("a guarded key changed"));
    } catch (error) {
      w.reject(etcdError(error));
    }
  }

  /**
   * After a failed attempt whose outcome is unknown (etcd may have committed it before the
   * connection dropped), a retry's compares fail against the write's own effect. The write
   * landed if every key it puts holds its bytes and every key it deletes is gone: Veil's
   * values carry random nonces or ids, so those bytes are this write's own.
   */
  private async landed(w: PendingWrite): Promise<boolean> {
    if (w.ops.length === 0) return false;
    const values = await this.getMany(w.ops.map((o) => o.key));
    return w.ops.every((op, i) => (op.type === "put" ? values[i] !== undefined && Buffer.compare(values[i], op.value) === 0 : values[i] === undefined));
  }

  private txnOf(group: readonly PendingWrite[]): ITxnRequest {
    const compare: ICompare[] = [];
    const success: IRequestOp[] = [];
    for (const w of group) {
      for (const g of w.guards) {
        compare.push(
          g.value === undefined
            ? { key: this.key(g.key), target: CompareTarget.Version, result: CompareResult.Equal, version: 0 }
            : { key: this.key(g.key), target: CompareTarget.Value, result: CompareResult.Equal, value: asBuffer(g.value) },
        );
      }
      for (const op of w.ops) {
        success.push(op.type === "put" ? { request_put: { key: this.key(op.key), value: asBuffer(op.value) } } : { request_delete_range: { key: this.key(op.key) } });
      }
    }
    return { compare, success };
  }

  /**
   * Ranges of PAGE_KEYS keys, each continuing after the last key of the one before, all read
   * at the revision of the first page: the scan is one consistent view, like LevelDB's iterator.
   */
  async *scan(range: KvRange, atRevision?: string): AsyncIterable<[string, Uint8Array]> {
    let lo = this.data;
    if (range.gte !== undefined) lo = this.key(range.gte);
    if (range.gt !== undefined) {
      const after = Buffer.concat([this.key(range.gt), ZERO]);
      if (Buffer.compare(after, lo) > 0) lo = after;
    }
    let hi = range.lt !== undefined ? this.key(range.lt) : this.dataEnd;
    if (Buffer.compare(hi, this.dataEnd) > 0) hi = this.dataEnd;
    const reverse = range.reverse === true;
    let remaining = range.limit !== undefined && range.limit >= 0 ? range.limit : Number.POSITIVE_INFINITY;
    let revision = atRevision;
    while (remaining > 0 && Buffer.compare(lo, hi) < 0) {
      const request = {
        key: lo,
        range_end: hi,
        limit: Math.min(PAGE_KEYS, remaining),
        ...(revision !== undefined ? { revision } : {}),
        ...(reverse ? { sort_order: SortOrder.Descend, sort_target: SortTarget.Key } : {}),
      };
      const res = await this.call(() => this.client.kv.range(request));
      this.saw(res.header);
      revision ??= res.header.revision;
      for (const kv of res.kvs) yield [this.unkey(kv.key), view(kv.value)];
      remaining -= res.kvs.length;
      const last = res.kvs.at(-1);
      if (!res.more || last === undefined) break;
      if (reverse) hi = last.key;
      else lo = Buffer.concat([last.key, ZERO]);
    }
  }

  /** Every entry as of one revision: counted and listed at that revision, however many writes land meanwhile. */
  async snapshot(): Promise<KvSnapshot> {
    const head = await this.call(() => this.client.kv.range({ key: this.data, range_end: this.dataEnd, count_only: true }));
    this.saw(head.header);
    const revision = head.header.revision;
    const count = Number(head.count);
    return {
      count: async () => count,
      entries: () => this.scan({}, revision),
      close: async () => {},
    };
  }

  /**
   * etcd's watch over the prefix, from just after the newest revision this process has seen.
   * While the watch stream is down, changes may be missed: onReset(false), then onReset(true)
   * once it is back (etcd3 resumes it from the last revision it delivered).
   */
  watch(prefix: string, handlers: KvWatchHandlers): () => void {
    let cancelled = false;
    let down = false;
    const builder = this.client.watch().prefix(this.key(prefix));
    if (this.revision > 0) builder.startRevision(String(this.revision + 1));
    const watcher = builder.watcher();
    const safely = (fn: () => void) => {
      try {
        fn();
      } catch {
        // A watcher's failure is its own; the change has landed either way.
      }
    };
    watcher.on("put", (kv) => safely(() => handlers.onChange({ key: this.unkey(kv.key), value: view(kv.value) })));
    watcher.on("delete", (kv) => safely(() => handlers.onChange({ key: this.unkey(kv.key), value: undefined })));
    watcher.on("disconnected", () => {
      if (cancelled || down) return;
      down = true;
      safely(() => handlers.onReset?.(false));
    });
    watcher.on("connected", () => {
      if (cancelled || !down) return;
      down = false;
      safely(() => handlers.onReset?.(true));
    });
    watcher.on("error", () => {
      if (cancelled || down) return;
      down = true;
      safely(() => handlers.onReset?.(false));
    });
    const unwatch = () => {
      if (cancelled) return;
      cancelled = true;
      this.unwatchers.delete(unwatch);
      void watcher.cancel().catch(() => {});
    };
    this.unwatchers.add(unwatch);
    return unwatch;
  }

  /**
   * The lease this process holds its locks and ephemeral keys by, kept alive by etcd3 in the
   * background. If it is lost (etcd unreachable past its TTL), the next use grants a new one
   * and the ephemeral keys are put again under it.
   */
  private session(): Promise<{ lease: Lease; id: string }> {
    this.lease ??= (async () => {
      let lease: Lease | undefined;
      try {
        // A Lease grants once, in its constructor: each attempt needs a new one.
        const id = await this.call(() => {
          lease?.release();
          lease = this.client.lease(this.leaseTtl);
          return lease.grant();
        });
        const granted = lease!;
        granted.on("lost", () => {
          this.lease = undefined;
          if (!this.closed && this.ephemerals.size > 0) void this.reputEphemerals().catch(() => {});
        });
        return { lease: granted, id };
      } catch (error) {
        this.lease = undefined;
        lease?.release();
        throw error;
      }
    })();
    return this.lease;
  }

  private async reputEphemerals() {
    const { id } = await this.session();
    const success: IRequestOp[] = [...this.ephemerals].map(([key, value]) => ({ request_put: { key: this.key(key), value, lease: id } }));
    if (success.length > 0) await this.call(() => this.client.kv.txn({ success }));
  }

  /**
   * In-process first (one caller at a time per name here), then across servers: a key under
   * the lock prefix created only if absent, attached to this process's lease, so a holder that
   * dies releases it within the lease TTL. Waiting holders poll with backoff.
   */
  withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
    return this.locks.withLock(name, async () => {
      const key = Buffer.concat([this.lockPrefix, Buffer.from(name, "utf8")]);
      const owner = Buffer.from(randomBytes(12).toString("hex"));
      for (let delay = 20; ; delay = Math.min(delay * 2, 500)) {
        const { id } = await this.session();
        const res = await this.call(() =>
          this.client.kv.txn({
            compare: [{ key, target: CompareTarget.Create, result: CompareResult.Equal, create_revision: 0 }],
            success: [{ request_put: { key, value: owner, lease: id } }],
          }),
        );
        if (res.succeeded) break;
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
      try {
        return await fn();
      } finally {
        // Only our own hold: if the lease lapsed meanwhile, the key may be another holder's now.
        await this.call(() =>
          this.client.kv.txn({
            compare: [{ key, target: CompareTarget.Value, result: CompareResult.Equal, value: owner }],
            success: [{ request_delete_range: { key } }],
          }),
        ).catch(() => {});
      }
    });
  }

  async putEphemeral(key: string, value: Uint8Array): Promise<KvEphemeral> {
    const bytes = Buffer.from(value);
    const { id } = await this.session();
    const res = await this.call(() => this.client.kv.txn({ success: [{ request_put: { key: this.key(key), value: bytes, lease: id } }] }));
    this.saw(res.header);
    this.ephemerals.set(key, bytes);
    let closed = false;
    return {
      close: async () => {
        if (closed) return;
        closed = true;
        this.ephemerals.delete(key);
        const del = await this.call(() => this.client.kv.deleteRange({ key: this.key(key) }));
        this.saw(del.header);
      },
    };
  }

  async close() {
    if (this.closed) return;
    await this.flushing;
    for (const unwatch of [...this.unwatchers]) unwatch();
    const held = this.lease;
    this.closed = true;
    this.lease = undefined;
    if (held !== undefined) {
      // Revoking deletes every lock and ephemeral key at once, instead of waiting out the TTL.
      await held.then(({ lease }) => lease.revoke({ deadline: Date.now() + 2000 })).catch(() => {});
    }
    this.client.close();
  }
}
