// `veil backup` (online, operator token) and `veil restore` (offline): the store as one checksummed file.
import { createHash } from "node:crypto";
import { open, rename, rm } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { type Command, parse } from "../command.js";
import { CONNECTION_HELP, CONNECTION_OPTIONS, connect } from "../connection.js";
import { EXIT, UsageError } from "../io.js";

/**
 * Streams the backup into a 0600 temp file beside FILE, syncs it, checks the checksum the
 * server put at its end, and only then renames it over FILE: FILE is whole or untouched.
 */
async function writeBackup(chunks: AsyncIterable<{ data: Uint8Array }>, out: string): Promise<{ bytes: number; sha256: string; header: Record<string, unknown> }> {
  const temp = join(dirname(out), `.${basename(out)}.${process.pid}.tmp`);
  const file = await open(temp, "wx", 0o600);
  const hash = createHash("sha256");
  let tail = Buffer.alloc(0);
  let head = "";
  let bytes = 0;
  try {
    for await (const { data } of chunks) {
      await file.write(data);
      bytes += data.length;
      // Everything but the last 72 bytes (the `sha256:<hex>\n` trailer) is hashed.
      const all = Buffer.concat([tail, data]);
      const keep = Math.min(all.length, 72);
      hash.update(all.subarray(0, all.length - keep));
      tail = all.subarray(all.length - keep);
      if (head.length < 4096 && !head.includes("}\n")) head += Buffer.from(data.subarray(0, 4096)).toString("latin1");
    }
    await file.sync();
    await file.close();
    const sha256 = hash.digest("hex");
    if (tail.toString("latin1") !== `sha256:${sha256}\n`) throw new Error("backup: the stream ended early or its checksum does not match; nothing was written");
    await rename(temp, out);
    const header = JSON.parse(head.split("\n")[1] ?? "{}") as Record<string, unknown>;
    return { bytes, sha256, header };
  } catch (error) {
    await file.close().catch(() => {});
    await rm(temp, { force: true });
    throw error;
  }
}

export const backupCommand: Command = {
  name: "backup",
  summary: "write a consistent snapshot of a running server (operator)",
  help: `Usage: veil backup --out FILE [--json]

Streams a consistent snapshot of the whole store from a running server into FILE
(mode 0600, written to a temp file and renamed, so FILE is whole or untouched). Every
tenant's secrets, versions, tokens, settings, keyring and audit trail: values stay
ciphertext and the keyring stays wrapped by the master key, so keep the master key
apart from the backup, and both safe. Needs the operator token.

Options:
  --out FILE     where to write the backup (required)
  --json         print {file, bytes, sha256, entries, layout, createdAt} as JSON
${CONNECTION_HELP}`,
  async run(argv) {
    const { values } = parse(argv, { ...CONNECTION_OPTIONS, out: { type: "string" }, json: { type: "boolean" } }, false);
    if (values.out === undefined || values.out === "") throw new UsageError("--out: required (the backup file to write)");
    const out = resolve(values.out);
    const client = await connect(values);
    const { bytes, sha256, header } = await writeBackup(client.backup.backup({}), out);
    const summary = { file: out, bytes, sha256, entries: header.entries, layout: header.layout, createdAt: header.createdAt };
    if (values.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
    else process.stderr.write(`${out}: ${header.entries} entries, ${bytes} bytes, sha256 ${sha256}\n`);
    return EXIT.ok;
  },
};

export const restoreCommand: Command = {
  name: "restore",
  summary: "offline: recreate a data dir from a backup file",
  help: `Usage: veil restore FILE --data-dir DIR [--json]

Recreates a data dir from a backup, offline (no server needed or running on DIR). DIR must
be absent or empty; anything else is refused. The checksum is verified before anything is
written. Tokens come back too: the operator token of the backed-up server keeps working
(copy its admin.token into DIR, or run 'veil token reset-operator --data-dir DIR'). Start
the server with the master key the backup was taken under (VEIL_MASTER_KEY or
--master-key-file; if it was the old data dir's master.key, copy that file into DIR);
another key is refused at start.

Options:
  --data-dir DIR   the data dir to create (required)
  --json           print {dataDir, entries, layout, createdAt} as JSON`,
  async run(argv) {
    const { values, positionals } = parse(argv, { "data-dir": { type: "string" }, json: { type: "boolean" } });
    if (positionals.length !== 1) throw new UsageError("expected exactly one FILE (the backup to restore)");
    if (values["data-dir"] === undefined || values["data-dir"] === "") throw new UsageError("--data-dir: required (an absent or empty dir to restore into)");
    const { restoreBackup } = await import("../../../server/backup/restore.js");
    const { dataDir, header } = await restoreBackup({ file: positionals[0]!, dataDir: values["data-dir"] });
    if (values.json) process.stdout.write(`${JSON.stringify({ dataDir, entries: header.entries, layout: header.layout, createdAt: header.createdAt })}\n`);
    else {
      process.stderr.write(
        `${dataDir}: restored ${header.entries} entries from a backup of ${header.createdAt}.\n` +
          "Start it with the master key the backup was taken under. The old operator token still works:\n" +
          `copy the old admin.token into ${dataDir}, or run 'veil token reset-operator --data-dir ${dataDir}' for a new one.\n`,
      );
    }
    return EXIT.ok;
  },
};
