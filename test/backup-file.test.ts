// The backup file format over a real LevelDB: one consistent snapshot, verified before it is trusted.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { encodeBackup, openBackupFile } from "../server/backup/backup-file.js";
import { openLevelStore } from "../server/store/level-store.js";
import { tempDir } from "./support/temp-dir.js";

const enc = new TextEncoder();

describe("backup file", () => {
  it("holds the store as of the snapshot, whatever is written while it streams, and round-trips it", async () => {
    const dir = tempDir();
    const store = await openLevelStore(join(dir.path, "db"));
    try {
      await store.write(Array.from({ length: 300 }, (_, i) => ({ type: "put" as const, key: `k${String(i).padStart(4, "0")}`, value: enc.encode(`v${i}`.repeat(200)) })));
      const snapshot = await store.snapshot!();
      // Before the count: still not in it.
      await store.write([{ type: "put", key: "k8888", value: enc.encode("after the snapshot") }]);
      const chunks: Uint8Array[] = [];
      let first = true;
      for await (const chunk of encodeBackup(snapshot, 1, new Date("2026-12-01T00:00:00Z"))) {
        chunks.push(chunk);
        if (first) {
          // Mid-stream: new keys, changed and deleted ones. None of it may show in the backup.
          await store.write([{ type: "put", key: "k9999", value: enc.encode("late") }, { type: "put", key: "k0001", value: enc.encode("changed") }, { type: "del", key: "k0299" }]);
          first = false;
        }
      }
      await snapshot.close();
      expect(chunks.length).toBeGreaterThan(1);
      const file = join(dir.path, "b");
      writeFileSync(file, Buffer.concat(chunks));
      const backup = await openBackupFile(file);
      expect(backup.header).toEqual({ format: 1, layout: 1, createdAt: "2026-12-01T00:00:00.000Z", entries: 300 });
      const entries = new Map<string, string>();
      for await (const [k, v] of backup.entries()) entries.set(k, Buffer.from(v).toString());
      await backup.close();
      expect(entries.size).toBe(300);
      expect(entries.get("k0001")).toBe("v1".repeat(200));
      expect(entries.get("k0299")).toBe("v299".repeat(200));
      expect(entries.has("k9999")).toBe(false);
      expect(entries.has("k8888")).toBe(false);

      // Truncated, or with a byte flipped anywhere: refused before anything is read.
      const whole = Buffer.concat(chunks);
      writeFileSync(file, whole.subarray(0, whole.length - 100));
      await expect(openBackupFile(file)).rejects.toThrow(/checksum/);
      const flipped = Buffer.from(whole);
      flipped[20]! ^= 0x40;
      writeFileSync(file, flipped);
      await expect(openBackupFile(file)).rejects.toThrow("checksum mismatch");
      writeFileSync(file, "not a backup at all, just some text that is long enough to pass the length check........................");
      await expect(openBackupFile(file)).rejects.toThrow("not a Veil backup");
    } finally {
      await store.close();
      dir.cleanup();
    }
  });
});
