// The server registry: each live server's id and advertise URL under `srv\0<id>`, kept by an ephemeral key (gone when the server is).
import { VeilError } from "../errors.js";
import type { KvEphemeral, KvStore } from "../store/kv.js";

/** What a server registers about itself. */
export interface ServerEntry {
  id: string;
  /** Where other servers reach it (http(s)://host:port). */
  url: string;
  startedAt: string;
}

const PREFIX = "srv\0";
const enc = new TextEncoder();
const dec = new TextDecoder();

/** The registry over a store, for this server. */
export interface Registry {
  /** Announces this server at `url` until `close()` (or its death: the store's lease lapses). */
  register(url: string): Promise<void>;
  /** A live server by id, read from the store on every call (no cache: a dead server must not look alive). */
  lookup(id: string): Promise<ServerEntry | undefined>;
  /** Every registered server. */
  list(): Promise<ServerEntry[]>;
  /** Removes this server's entry. */
  close(): Promise<void>;
}

/** Creates the registry for server `selfId`. */
export function createRegistry(store: KvStore, selfId: string): Registry {
  let entry: KvEphemeral | undefined;
  const registry: Registry = {
    async register(url) {
      await entry?.close();
      // Two live servers with one id would take each other's conversations (and audit keys).
      // The same id at the same URL is this server restarted before its old lease lapsed.
      const live = await registry.lookup(selfId);
      if (live !== undefined && live.url !== url) {
        throw new VeilError(
          "failed_precondition",
          `--server-id ${selfId}: a server with this id is registered at ${live.url} (live, or died less than its lease ago): give each server its own id`,
        );
      }
      const value: ServerEntry = { id: selfId, url, startedAt: new Date().toISOString() };
      entry = await store.putEphemeral(PREFIX + selfId, enc.encode(JSON.stringify(value)));
    },
    async lookup(id) {
      const raw = await store.get(PREFIX + id);
      return raw === undefined ? undefined : (JSON.parse(dec.decode(raw)) as ServerEntry);
    },
    async list() {
      const out: ServerEntry[] = [];
      for await (const [, raw] of store.scan({ gte: PREFIX, lt: "srv\u0001" })) out.push(JSON.parse(dec.decode(raw)) as ServerEntry);
      return out;
    },
    async close() {
      const current = entry;
      entry = undefined;
      await current?.close();
    },
  };
  return registry;
}

/**
 * On a store one process owns alone (LevelDB), every entry left there is a crashed earlier
 * run's (ephemeral keys outlive a crash there): removed at start, so none looks alive.
 */
export async function clearStaleEntries(store: KvStore): Promise<void> {
  const stale: string[] = [];
  for await (const [key] of store.scan({ gte: PREFIX, lt: "srv\u0001" })) stale.push(key);
  if (stale.length > 0) await store.write(stale.map((key) => ({ type: "del" as const, key })));
}
