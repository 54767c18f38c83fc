// A full data-dir disk: writes answer RESOURCE_EXHAUSTED naming no value, nothing half-written, recovery without a restart.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collect, createVeilClient, type VeilClient } from "../client/index.js";
import { nodeTransport } from "../client/node-transport.js";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../gen/grpc/health/v1/health_pb.js";
import { VeilError } from "../server/errors.js";
import { createLogger } from "../server/log.js";
import { toConnectError } from "../server/rpc/errors.js";
import { storeError } from "../server/store/level-store.js";
import { startTestServer, type TestServer } from "./support/server.js";

const CANARY = "CANARY_diskfull_7b2c";

/** Mounts a small tmpfs for the data dir; undefined (with the reason) where mounting is not permitted. */
function mountSmallDisk(): { dir: string; reason?: undefined } | { dir?: undefined; reason: string } {
  const dir = mkdtempSync(join(tmpdir(), "veil-diskfull-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", dir], { stdio: "pipe" });
    return { dir };
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    return { reason: `cannot mount a tmpfs here (${(error as Error).message.split("\n")[0]}): needs root and mount permission` };
  }
}

const disk = mountSmallDisk();

/** One batch of `n` secrets, ~48 KiB each, every value carrying the canary. */
function batch(i: number, n = 8) {
  return Array.from({ length: n }, (_, j) => ({ name: `B${i}_S${j}`, text: `${CANARY}:${i}:${j}:${randomBytes(36 * 1024).toString("base64")}` }));
}

describe.skipIf(disk.reason !== undefined)(`a full data-dir disk${disk.reason ? ` (skipped: ${disk.reason})` : ""}`, () => {
  const filler = join(disk.dir ?? "", "filler");
  let srv: TestServer;
  let admin: VeilClient;
  const acknowledged: { name: string; text: string }[] = [];
  let failedBatch: { name: string; text: string }[] = [];

  beforeAll(async () => {
    // Room to free later, so the test can show recovery without a restart. Half the disk: to
    // reopen, LevelDB rewrites its write-ahead logs (up to twice its 4 MiB write buffer) as tables.
    writeFileSync(filler, randomBytes(8 * 1024 * 1024));
    mkdirSync(join(disk.dir!, "data"), { mode: 0o700 });
    srv = await startTestServer({ dataDir: join(disk.dir!, "data") });
    admin = await createVeilClient({ baseUrl: srv.url, token: srv.token, protocol: "grpc" });
  });
  afterAll(async () => {
    await srv?.close();
    if (disk.dir !== undefined) {
      execFileSync("umount", [disk.dir]);
      rmSync(disk.dir, { recursive: true, force: true });
    }
  });

  it("answers the write that does not fit RESOURCE_EXHAUSTED, naming no value", async () => {
    let failure: unknown;
    for (let i = 0; i < 100 && failure === undefined; i++) {
      const secrets = batch(i);
      try {
        await admin.secrets.setSecrets({ secrets });
        acknowledged.push(...secrets);
      } catch (error) {
        failure = error;
        failedBatch = secrets;
      }
    }
    expect(failure, "the disk never filled").toBeInstanceOf(ConnectError);
    const error = failure as ConnectError;
    expect(Code[error.code], error.message).toBe("ResourceExhausted");
    expect(error.rawMessage).toBe("store: no space left on device; the write was not applied");
    expect(acknowledged.length).toBeGreaterThan(0);
    // Writes keep failing clearly (not INTERNAL) while the disk is full.
    const again = await admin.secrets.setSecrets({ secrets: [{ name: "SMALL", text: CANARY }] }).catch((e: unknown) => e as ConnectError);
    expect(again).toBeInstanceOf(ConnectError);
    expect(["ResourceExhausted", "Unavailable"]).toContain(Code[(again as ConnectError).code]);
    expect((again as ConnectError).rawMessage).toMatch(/no space left on device/);
  });

  it("keeps serving while full: health, the audit trail, and reads fail closed only for lack of an audit event", async () => {
    const health = createClient(Health, nodeTransport({ baseUrl: srv.url, interceptors: [], protocol: "grpc" }));
    expect((await health.check({})).status).toBe(Status.SERVING);
    // Unaudited reads are answered from the store as usual.
    const events = await admin.audit.listAuditEvents({ action: "secret.set", pageSize: 1000 });
    expect(events.events.map((e) => e.secretName)).toEqual(expect.arrayContaining(acknowledged.slice(0, 3).map((s) => s.name)));
    // A value leaves only once its read is on record: on a full disk that may be impossible.
    const read = await admin.secrets.getSecret({ name: acknowledged[0]!.name }).then(
      (r) => r,
      (e: unknown) => e as ConnectError,
    );
    if (read instanceof ConnectError) {
      expect(Code[read.code]).toBe("Unavailable");
      expect(read.rawMessage).toBe("audit trail unavailable (store: no space left on device): the action was not answered");
    } else {
      expect(read.text).toBe(acknowledged[0]!.text);
    }
  });

  it("refuses a conversation start clearly, running nothing", async () => {
    const error = await collect(admin.startConversation({ commands: [`echo ${CANARY} > started`], endWhenDone: true })).then(
      () => undefined,
      (e: unknown) => e as ConnectError,
    );
    expect(error, "the conversation started on a full disk").toBeInstanceOf(ConnectError);
    expect(["ResourceExhausted", "Unavailable", "FailedPrecondition"], error!.message).toContain(Code[error!.code]);
    expect(error!.rawMessage).toMatch(/no space left on device|bubblewrap|sandbox/);
    expect(srv.server.app.conversations.size).toBe(0);
  });

  it("after space is freed: writes work again without a restart, every acknowledged secret reads back, the failed batch is absent", async () => {
    rmSync(filler);
    await admin.secrets.setSecrets({ secrets: [{ name: "AFTER", text: `${CANARY}-after` }] });
    expect((await admin.secrets.getSecret({ name: "AFTER" })).text).toBe(`${CANARY}-after`);
    for (const s of acknowledged) expect((await admin.secrets.getSecret({ name: s.name })).text, s.name).toBe(s.text);
    const listed = new Set<string>();
    let pageToken = "";
    do {
      const page = await admin.secrets.listSecrets({ pageSize: 1000, pageToken });
      for (const s of page.secrets) listed.add(s.name);
      pageToken = page.nextPageToken;
    } while (pageToken);
    for (const s of failedBatch) expect(listed.has(s.name), `${s.name} of the failed batch was stored`).toBe(false);
    expect(listed.size).toBe(acknowledged.length + 1);
  });

  it("never logs a value", () => {
    expect(srv.logs.join("\n")).not.toContain(CANARY);
  });
});

describe("disk-full errors, as mapped", () => {
  it("LevelDB's I/O errors become domain errors naming neither path nor data, also when wrapped", () => {
    const io = (message: string) => Object.assign(new Error(`IO error: /data/${CANARY}/000008.log: ${message}`), { code: "LEVEL_IO_ERROR" });
    const cases: [unknown, string, string][] = [
      [io("No space left on device"), "resource_exhausted", "store: no space left on device; the write was not applied"],
      [new Error("Database failed to open", { cause: io("No space left on device") }), "resource_exhausted", "store: no space left on device; the write was not applied"],
      [io("Disk quota exceeded"), "resource_exhausted", "store: disk quota exceeded; the write was not applied"],
      [io("Input/output error"), "unavailable", "store: I/O error; the write was not applied"],
    ];
    for (const [error, kind, message] of cases) {
      const mapped = storeError(error) as VeilError;
      expect(mapped).toBeInstanceOf(VeilError);
      expect([mapped.kind, mapped.message]).toEqual([kind, message]);
    }
    const other = new Error("something else");
    expect(storeError(other)).toBe(other);
  });

  it("a full disk outside the store (a workspace, a file) is RESOURCE_EXHAUSTED, not INTERNAL, without the path", () => {
    const logs: string[] = [];
    const enospc = Object.assign(new Error(`ENOSPC: no space left on device, mkdir '/work/${CANARY}'`), { code: "ENOSPC" });
    const error = toConnectError(enospc, createLogger((l) => logs.push(l)), "veil.v1.ConversationService/StartConversation");
    expect([Code[error.code], error.rawMessage]).toEqual(["ResourceExhausted", "no space left on device"]);
    expect(logs.join("")).not.toContain(CANARY);
  });
});
