// References and expressions in StartConversation env values and rendered files: fields, sessions, grants, errors, modes, masking, audit.
import { createHash } from "node:crypto";
import { lstatSync, mkdirSync, readFileSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { collect, createVeilClient, Role, type VeilClient } from "../client/index.js";
import type { StartConversationRequestSchema } from "../gen/veil/v1/conversation_pb.js";
import { VeilError } from "../server/errors.js";
import { detectSandbox } from "../server/domain/executor.js";
import { writeWorkspaceFiles } from "../server/domain/workspace-files.js";
import { startTestServer, type TestServer } from "./support/server.js";
import { tempDir } from "./support/temp-dir.js";

const hasBwrap = (await detectSandbox("required")).kind === "bubblewrap";
const skipNote = hasBwrap ? "" : " (skipped: bubblewrap is not installed)";
const API_KEY = "sk-canary-Ref-4f9a1b2c3d4e";
const SESSION_KEY = "sk-canary-RefSession-77aa";
const DB = { user: "app", password: "pw-canary-Ref-Zq8Xw3Vt" };
const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

type Start = MessageInitShape<typeof StartConversationRequestSchema>;

/** Starts a conversation that must fail before anything runs: the error, and no event at all. */
async function startFails(client: VeilClient, request: Start): Promise<ConnectError> {
  const events: unknown[] = [];
  const error = await (async () => {
    for await (const event of client.startConversation({ commands: ["echo ran"], endWhenDone: true, ...request })) events.push(event);
  })().catch((e: unknown) => e);
  expect(error, "the start should have failed").toBeInstanceOf(ConnectError);
  expect(events).toEqual([]);
  return error as ConnectError;
}

describe.skipIf(!hasBwrap)(`references in env values and files${skipNote}`, () => {
  let s: TestServer;
  let admin: VeilClient;
  let bot: VeilClient;

  beforeAll(async () => {
    s = await startTestServer();
    admin = await createVeilClient({ baseUrl: s.url, token: s.token });
    bot = await createVeilClient({ baseUrl: s.url, token: (await admin.tokens.createToken({ role: Role.AGENT, agent: "bot" })).token });
    await admin.secrets.setSecrets({
      secrets: [
        { name: "API_KEY", text: API_KEY },
        { name: "DB", fields: DB },
        { name: "OTHERS_ONLY", text: "canary-Ref-others-only", allowedAgents: ["someone"] },
      ],
    });
    await admin.secrets.setSecrets({ session: "s1", secrets: [{ name: "API_KEY", text: SESSION_KEY }] });
  });
  afterAll(async () => {
    await s.close();
    expect(s.logs.join("\n")).not.toMatch(/canary-Ref/);
  });

  it("an env value that is a reference, or text with expressions, gets the value, masked; $NAME is not injected", async () => {
    const run = await collect(
      bot.startConversation({
        env: { K: "veil://API_KEY", PW: "veil://DB/password", URL: "postgres://{{ secrets.DB.user }}:{{secrets.DB.password}}@db/app", PLAIN: "veil is fine here" },
        commands: ['echo "$K"; echo "$URL"; echo "$PLAIN"', 'printf %s "$PW" | sha256sum | cut -c1-64', 'echo "${API_KEY:-unset} ${DB:-unset} ${DB_PASSWORD:-unset}"'],
        endWhenDone: true,
      }),
    );
    expect(run.started?.secrets).toEqual(["API_KEY", "DB"]);
    expect(run.commands.map((c) => c.stdoutText)).toEqual(["<secret-hidden>\npostgres://app:<secret-hidden>@db/app\nveil is fine here\n", `${sha256(DB.password)}\n`, "unset unset unset\n"]);
  });

  it("renders files 0600 in 0700 folders before the first command; cat of them is masked", async () => {
    const run = await collect(
      bot.startConversation({
        files: { "config/app/settings.env": "KEY={{ secrets.API_KEY }}\nDB_USER={{ secrets.DB.user }}\n", "top.txt": "pw: {{ secrets.DB.password }}\n" },
        commands: ["cat config/app/settings.env top.txt", "stat -c '%a %U' config config/app config/app/settings.env top.txt | sed \"s/ $(id -un)$/ me/\""],
        endWhenDone: true,
      }),
    );
    expect(run.commands[0]?.stdoutText).toBe("KEY=<secret-hidden>\nDB_USER=app\npw: <secret-hidden>\n");
    expect(run.commands[1]?.stdoutText).toBe("700 me\n700 me\n600 me\n600 me\n");
  });

  it("a static secret declared and referenced in an env value and a file, with the session's value winning", async () => {
    const run = await collect(
      bot.startConversation({
        session: "s1",
        secrets: ["API_KEY"],
        env: { AUTH: "Bearer {{ secrets.API_KEY }}" },
        files: { "key.txt": "{{ secrets.API_KEY }}" },
        commands: ['printf %s "$API_KEY" | sha256sum | cut -c1-64; printf %s "${AUTH#Bearer }" | sha256sum | cut -c1-64; sha256sum < key.txt | cut -c1-64; echo "$AUTH"'],
        endWhenDone: true,
      }),
    );
    const h = sha256(SESSION_KEY);
    expect(run.commands[0]?.stdoutText).toBe(`${h}\n${h}\n${h}\nBearer <secret-hidden>\n`);
  });

  it("a secret with egress hosts renders as its placeholder, never its value", async () => {
    await admin.secrets.setSecrets({ secrets: [{ name: "HOSTED", text: "hosted-canary-Ref-0a1b2c3d", egressHosts: ["api.example.com"] }] });
    const run = await collect(bot.startConversation({ env: { H: "veil://HOSTED" }, files: { h: "{{ secrets.HOSTED }}" }, commands: ['echo "$H"; cat h; echo; [ "$H" = "$(cat h)" ] && echo same'], endWhenDone: true }));
    const [env, file, same] = run.commands[0]!.stdoutText.split("\n");
    expect(env).toMatch(/^veil_ph_/);
    expect([file, same]).toEqual([env, "same"]);
    expect(run.commands[0]?.stdoutText).not.toContain("hosted-canary");
  });

  it("records the referenced names in the conversation.start audit event", async () => {
    await collect(bot.startConversation({ secrets: ["DB"], env: { K: "veil://API_KEY" }, files: { f: "{{ secrets.DB.user }}" }, commands: ["true"], endWhenDone: true }));
    const events = (await admin.audit.listAuditEvents({ action: "conversation.start" })).events;
    expect(events.at(-1)?.secretNames).toEqual(["DB", "API_KEY"]);
  });

  it("missing and ungranted names fail the start naming the field, before anything runs", async () => {
    let e = await startFails(bot, { env: { X: "veil://NOPE" } });
    expect([Code[e.code], e.rawMessage]).toEqual(["NotFound", "env[X]: no secret named NOPE"]);
    e = await startFails(bot, { files: { "a/b.txt": "x {{ secrets.NOPE.f }}" } });
    expect([Code[e.code], e.rawMessage]).toEqual(["NotFound", "files[a/b.txt]: no secret named NOPE"]);
    e = await startFails(bot, { env: { X: "{{ secrets.OTHERS_ONLY }}" } });
    expect([Code[e.code], e.rawMessage]).toEqual(["PermissionDenied", "env[X]: secret OTHERS_ONLY is not granted to agent bot"]);
    // Declared ones first, like before.
    e = await startFails(bot, { secrets: ["NOPE2"], env: { X: "veil://NOPE" } });
    expect(e.rawMessage).toBe("secrets[0]: no secret named NOPE2");
  });

  it("bad syntax is INVALID_ARGUMENT with the position; fields are checked, case-sensitively", async () => {
    const cases: [Start, string | RegExp][] = [
      [{ env: { X: "a {{ secret.API_KEY }}" } }, /^env\[X\]: line 1, column 3: unknown expression; an expression must be/],
      [{ files: { "c.txt": "one\ntwo {{ secrets.API_KEY" } }, /^files\[c\.txt\]: line 2, column 5: "\{\{" is never closed/],
      [{ env: { X: "veil://DB/" } }, /^env\[X\]: a reference must be veil:\/\/NAME or veil:\/\/NAME\/FIELD/],
      [{ env: { X: "veil://DB" } }, /^env\[X\]: DB has fields \(password, user\); name one/],
      [{ env: { X: "veil://DB/User" } }, /^env\[X\]: DB has no field User \(field names are case-sensitive/],
      [{ files: { f: "{{ secrets.API_KEY.x }}" } }, "files[f]: API_KEY is a single value; it has no field x"],
    ];
    for (const [request, message] of cases) {
      const e = await startFails(bot, request);
      expect(Code[e.code]).toBe("InvalidArgument");
      expect(e.rawMessage).toMatch(message);
      expect(e.rawMessage).not.toContain("pw-canary");
    }
  });

  it("refuses file paths that are absolute, climb out, are empty or hold NUL, naming files[path]", async () => {
    const bad: [string, RegExp][] = [
      ["/etc/passwd", /not absolute/],
      ["../escape", /'\.\.'/],
      ["a/../../b", /'\.\.'/],
      ["", /must not be empty/],
      ["a\0b", /NUL/],
      ["a//b", /empty or '\.' segments/],
      ["./a", /empty or '\.' segments/],
    ];
    for (const [path, rule] of bad) {
      // A missing secret in the same start: the path is refused first, so nothing is resolved.
      const e = await startFails(bot, { files: { [path]: "x", ok: "{{ secrets.NOPE }}" } });
      expect(Code[e.code]).toBe("InvalidArgument");
      expect(e.rawMessage.startsWith(`files[${path}]: `), e.rawMessage).toBe(true);
      expect(e.rawMessage).toMatch(rule);
    }
    const e = await startFails(bot, { files: { a: "x", "a/b": "y" } });
    expect(e.rawMessage).toBe("files[a/b]: a is also one of the files, so it cannot be a folder");
  });
});

describe("writing rendered files", () => {
  it("never follows a symlink on the way, and writes 0600 files in 0700 folders", () => {
    const dir = tempDir();
    try {
      const outside = join(dir.path, "outside");
      const ws = join(dir.path, "ws");
      mkdirSync(outside);
      mkdirSync(ws);
      symlinkSync(outside, join(ws, "link"));
      symlinkSync(join(outside, "target"), join(ws, "file-link"));
      for (const path of ["link/x.txt", "file-link"]) {
        try {
          writeWorkspaceFiles(ws, { [path]: "secret" });
          expect.unreachable(`${path} was written`);
        } catch (error) {
          expect(error).toBeInstanceOf(VeilError);
          expect((error as VeilError).kind).toBe("invalid_argument");
          expect((error as VeilError).message.startsWith(`files[${path}]: `)).toBe(true);
        }
      }
      expect(() => lstatSync(join(outside, "x.txt"))).toThrow();
      expect(() => lstatSync(join(outside, "target"))).toThrow();
      writeWorkspaceFiles(ws, { "d/e/f.txt": "v" });
      expect(lstatSync(join(ws, "d")).mode & 0o777).toBe(0o700);
      expect(lstatSync(join(ws, "d/e")).mode & 0o777).toBe(0o700);
      expect(lstatSync(join(ws, "d/e/f.txt")).mode & 0o777).toBe(0o600);
      expect(readFileSync(join(ws, "d/e/f.txt"), "utf8")).toBe("v");
    } finally {
      dir.cleanup();
    }
  });
});
