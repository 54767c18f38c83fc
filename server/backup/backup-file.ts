// The backup file format: a header, the store's raw entries, and a SHA-256 checksum over both.
import { createHash } from "node:crypto";
import { type FileHandle, open } from "node:fs/promises";
import { VeilError } from "../errors.js";
import type { KvSnapshot } from "../store/kv.js";

/**
 * Layout of a backup file (format 1):
 *   `veil-backup\n`                      magic line
 *   `{"format":1,"layout":L,"createdAt":"ISO","entries":N}\n`   header
 *   N entries: u32be key length, key (UTF-8), u32be value length, value (raw store bytes)
 *   `sha256:<64 hex>\n`                  SHA-256 of every byte before this line
 * Values are the store's own bytes: ciphertext, and a keyring wrapped by the master key.
 */
export const BACKUP_FORMAT = 1;
const MAGIC = "veil-backup\n";
const TRAILER_BYTES = "sha256:".length + 64 + 1;
const CHUNK_BYTES = 64 * 1024;

/** What a backup file says about itself. */
export interface BackupHeader {
  format: number;
  layout: number;
  createdAt: string;
  entries: number;
}

/** A backup file that fails its checks; never carries a key or a value in its message. */
export class BackupFileError extends VeilError {
  constructor(message: string) {
    super("invalid_argument", message);
  }
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

/**
 * Encodes a snapshot as a backup file, in chunks of about 64 KiB. The entry count comes from
 * the same snapshot as the entries, so the header holds however many writes land meanwhile.
 */
export async function* encodeBackup(snapshot: KvSnapshot, layout: number, now = new Date()): AsyncGenerator<Uint8Array> {
  const hash = createHash("sha256");
  const header: BackupHeader = { format: BACKUP_FORMAT, layout, createdAt: now.toISOString(), entries: await snapshot.count() };
  let pending: Buffer[] = [Buffer.from(MAGIC), Buffer.from(`${JSON.stringify(header)}\n`)];
  let size = 0;
  const flush = () => {
    const chunk = Buffer.concat(pending);
    hash.update(chunk);
    pending = [];
    size = 0;
    return chunk;
  };
  let written = 0;
  for await (const [key, value] of snapshot.entries()) {
    const k = Buffer.from(key, "utf8");
    pending.push(u32(k.length), k, u32(value.length), Buffer.from(value.buffer, value.byteOffset, value.byteLength));
    size += 8 + k.length + value.length;
    written++;
    if (size >= CHUNK_BYTES) yield flush();
  }
  if (written !== header.entries) throw new VeilError("internal", "backup: the snapshot changed while it was read");
  const last = flush();
  yield Buffer.concat([last, Buffer.from(`sha256:${hash.digest("hex")}\n`)]);
}

/** Buffered positional reads over an open file. */
class Reader {
  private buffer = Buffer.alloc(0);
  private start = 0;
  constructor(
    private readonly file: FileHandle,
    private position: number,
    private readonly end: number,
  ) {}

  get remaining() {
    return this.end - this.position + (this.buffer.length - this.start);
  }

  async take(n: number): Promise<Buffer> {
    if (n > this.remaining) throw new BackupFileError("backup file: truncated (an entry runs past the checksum)");
    while (this.buffer.length - this.start < n) {
      const want = Math.min(Math.max(n, 1024 * 1024), this.end - this.position);
      const fresh = Buffer.alloc(want);
      const { bytesRead } = await this.file.read(fresh, 0, want, this.position);
      this.position += bytesRead;
      this.buffer = Buffer.concat([this.buffer.subarray(this.start), fresh.subarray(0, bytesRead)]);
      this.start = 0;
    }
    const out = this.buffer.subarray(this.start, this.start + n);
    this.start += n;
    return out;
  }

  async line(max: number): Promise<string> {
    let text = "";
    while (text.length < max) {
      const byte = await this.take(1);
      if (byte[0] === 0x0a) return text;
      text += String.fromCharCode(byte[0]!);
    }
    throw new BackupFileError("backup file: header line too long");
  }
}

function parseHeader(line: string): BackupHeader {
  let header: Partial<BackupHeader>;
  try {
    header = JSON.parse(line) as Partial<BackupHeader>;
  } catch {
    throw new BackupFileError("backup file: the header is not JSON");
  }
  const whole = (n: unknown) => typeof n === "number" && Number.isSafeInteger(n) && n >= 0;
  if (!whole(header.format) || !whole(header.layout) || !whole(header.entries) || typeof header.createdAt !== "string") {
    throw new BackupFileError("backup file: the header lacks format, layout, createdAt or entries");
  }
  if (header.format !== BACKUP_FORMAT) throw new BackupFileError(`backup file: format ${header.format} is not one this Veil reads (it reads ${BACKUP_FORMAT})`);
  return header as BackupHeader;
}

/** An open backup file whose checksum held: its header, then its entries. */
export interface VerifiedBackup {
  header: BackupHeader;
  entries(): AsyncGenerator<[string, Uint8Array]>;
  close(): Promise<void>;
}

/**
 * Opens a backup file and verifies its SHA-256 over every byte before the trailer, then its
 * header. Nothing is trusted (or written anywhere) before the checksum holds.
 */
export async function openBackupFile(path: string): Promise<VerifiedBackup> {
  const file = await open(path, "r").catch((error: NodeJS.ErrnoException) => {
    throw new BackupFileError(`backup file: cannot open ${path} (${error.code ?? error.message})`);
  });
  try {
    const { size } = await file.stat();
    if (size < MAGIC.length + TRAILER_BYTES) throw new BackupFileError("backup file: too short to be a Veil backup");
    const magic = Buffer.alloc(MAGIC.length);
    await file.read(magic, 0, MAGIC.length, 0);
    if (magic.toString("latin1") !== MAGIC) throw new BackupFileError("backup file: not a Veil backup (no veil-backup magic line)");
    const body = size - TRAILER_BYTES;
    const hash = createHash("sha256");
    for await (const chunk of file.createReadStream({ start: 0, end: body - 1, autoClose: false })) hash.update(chunk as Buffer);
    const trailer = Buffer.alloc(TRAILER_BYTES);
    await file.read(trailer, 0, TRAILER_BYTES, body);
    const expected = /^sha256:([0-9a-f]{64})\n$/.exec(trailer.toString("latin1"))?.[1];
    if (expected === undefined) throw new BackupFileError("backup file: no checksum at its end (truncated?)");
    if (expected !== hash.digest("hex")) throw new BackupFileError("backup file: checksum mismatch (the file is corrupted or truncated); nothing was restored");
    const reader = new Reader(file, MAGIC.length, body);
    const header = parseHeader(await reader.line(4096));
    return {
      header,
      async *entries() {
        for (let i = 0; i < header.entries; i++) {
          const key = (await reader.take((await reader.take(4)).readUInt32BE())).toString("utf8");
          const value = new Uint8Array(await reader.take((await reader.take(4)).readUInt32BE()));
          yield [key, value];
        }
        if (reader.remaining !== 0) throw new BackupFileError("backup file: bytes after the last entry the header counts");
      },
      close: () => file.close(),
    };
  } catch (error) {
    await file.close();
    throw error;
  }
}
