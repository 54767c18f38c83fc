// Layout 1 -> 2 at start: a data dir whose settings embed the API-key blob is migrated once, the blob moved as it is.
import { settingsAad } from "../server/crypto/sealed-paths.js";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { encodeBackup } from "../server/backup/backup-file.js";
import { restoreBackup } from "../server/backup/restore.js";
import { Keyring } from "../server/crypto/keyring.js";

import type { KvStore } from "../server/store/kv.js";
import { openLevelStore } from "../server/store/level-store.js";
import { startTestApp, TEST_MASTER_KEY } from "./support/app.js";
import { tempDir } from "./support/temp-dir.js";

const API_KEY = "sk-canary-layout1-7f3a9c";
const enc = new TextEncoder();

/** Every settings, API-key and layout entry, for comparing two starts byte for byte. */
async function settingsEntries(store: KvStore): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const [key, value] of store.scan({ gte: "cfg", lt: "cfh" })) out.set(key, Buffer.from(value).toString("base64"));
  out.set("sys\0layout", Buffer.from((await store.get("sys\0layout"))!).toString());
  return out;
}

/** A layout-1 data dir as the old code wrote it: the API key sealed by the keyring and embedded in the settings JSON. */
async function writeLayout1(dataDir: string): Promise<Uint8Array> {
  const store = await openLevelStore(join(dataDir, "db"));
  try {
    const keyring = await Keyring.open(store, Buffer.from(TEST_MASTER_KEY, "base64"), { watch: false });
    const blob = keyring.seal("default", enc.encode(API_KEY), settingsAad("default"));
    const legacy = { llm: { model: "claude-old", baseUrl: "https://llm.example", apiKey: Buffer.from(blob).toString("base64") }, options: { theme: "dark" } };
    await store.write([
      { type: "put", key: "cfg\0default", value: enc.encode(JSON.stringify(legacy)) },
      // A tenant with settings but no API key: nothing to move.
      { type: "put", key: "cfg\0acme", value: enc.encode(JSON.stringify({ llm: { model: "m" }, options: {} })) },
      { type: "put", key: "sys\0layout", value: enc.encode("1") },
    ]);
    return blob;
  } finally {
    await store.close();
  }
}

describe("store layout 2 migration", () => {
  it("moves the embedded API key into its own sealed value once, at start; the key reads back and a restart changes nothing", async () => {
    const dir = tempDir();
    try {
      const blob = await writeLayout1(dir.path);

      const first = await startTestApp({ dataDir: dir.path });
      expect(await first.app.settings.read("default")).toEqual({
        llm: { model: "claude-old", baseUrl: "https://llm.example", apiKey: API_KEY },
        options: { theme: "dark" },
      });
      expect((await first.app.settings.read("acme")).llm).toEqual({ model: "m" });
      await first.close();
      expect(first.logs.join("\n")).not.toContain(API_KEY);

      let store = await openLevelStore(join(dir.path, "db"));
      const migrated = await settingsEntries(store);
      await store.close();
      expect(migrated.get("sys\0layout")).toBe("2");
      // Moved as it was (same associated data, so nothing was decrypted or re-sealed).
      expect(migrated.get("cfgkey\0default")).toBe(Buffer.from(blob).toString("base64"));
      const record = JSON.parse(Buffer.from(migrated.get("cfg\0default")!, "base64").toString()) as { llm: Record<string, unknown> };
      expect(record.llm).toEqual({ model: "claude-old", baseUrl: "https://llm.example" });
      expect(migrated.has("cfgkey\0acme")).toBe(false);

      const second = await startTestApp({ dataDir: dir.path });
      expect((await second.app.settings.read("default")).llm.apiKey).toBe(API_KEY);
      await second.close();
      store = await openLevelStore(join(dir.path, "db"));
      expect(await settingsEntries(store)).toEqual(migrated);
      await store.close();
    } finally {
      dir.cleanup();
    }
  });

  it("a layout-1 backup restores as layout 1 and migrates at the first start on it", async () => {
    const [source, target] = [tempDir(), tempDir()];
    try {
      await writeLayout1(source.path);
      const store = await openLevelStore(join(source.path, "db"));
      const snapshot = await store.snapshot!();
      const chunks: Uint8Array[] = [];
      for await (const chunk of encodeBackup(snapshot, 1)) chunks.push(chunk);
      await snapshot.close();
      await store.close();
      const file = join(source.path, "layout1.backup");
      writeFileSync(file, Buffer.concat(chunks));

      const restored = await restoreBackup({ file, dataDir: join(target.path, "dir") });
      expect(restored.header.layout).toBe(1);
      const app = await startTestApp({ dataDir: restored.dataDir });
      expect((await app.app.settings.read("default")).llm.apiKey).toBe(API_KEY);
      await app.close();
      const after = await openLevelStore(join(restored.dataDir, "db"));
      expect(Buffer.from((await after.get("sys\0layout"))!).toString()).toBe("2");
      await after.close();
    } finally {
      source.cleanup();
      target.cleanup();
    }
  });

  it("marks a fresh data dir layout 2 without migrating anything", async () => {
    const dir = tempDir();
    try {
      await (await startTestApp({ dataDir: dir.path })).close();
      const store = await openLevelStore(join(dir.path, "db"));
      expect(Buffer.from((await store.get("sys\0layout"))!).toString()).toBe("2");
      await store.close();
    } finally {
      dir.cleanup();
    }
  });
});
