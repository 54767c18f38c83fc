// The one store contract suite, run against every backend: LevelDB, memory (with etcd's limits) and a real etcd.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll } from "vitest";
import { etcdLimits, openEtcdStore } from "../server/store/etcd-store.js";
import { openLevelStore } from "../server/store/level-store.js";
import { openMemoryStore } from "../server/store/memory-store.js";
import { type EtcdCluster, etcdMissing, startEtcd } from "./support/etcd.js";
import { describeKvStore } from "./support/kv-conformance.js";
import { tempDir } from "./support/temp-dir.js";

describeKvStore("leveldb", async () => {
  const dir = tempDir();
  const store = await openLevelStore(dir.path);
  return {
    store,
    close: async () => {
      await store.close();
      dir.cleanup();
    },
  };
});

describeKvStore("memory, with etcd's default limits", async () => {
  const store = openMemoryStore({ limits: etcdLimits(128, 1.5 * 1024 * 1024, "veil/") });
  // Servers sharing a memory store hold the same object.
  return { store, peer: async () => store, close: () => store.close() };
});

let cluster: EtcdCluster | undefined;
beforeAll(async () => {
  if (etcdMissing === undefined) cluster = await startEtcd();
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
});

describeKvStore(
  "etcd",
  async () => {
    // A fresh deployment prefix per test: an empty store without restarting etcd.
    const prefix = `t${randomBytes(6).toString("hex")}/`;
    const open = () => openEtcdStore({ endpoints: cluster!.endpoints, prefix });
    const store = await open();
    return { store, peer: open, close: () => store.close() };
  },
  etcdMissing !== undefined ? { skip: etcdMissing } : {},
);
