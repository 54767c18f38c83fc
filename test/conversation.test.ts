// Conversations over the network: injection, masking of every form, terminal state, limits, cleanup.
import { createHash } from "node:crypto";
import { readdirSync, readlinkSync, realpathSync } from "node:fs";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collect, createVeilClient, Inject, Role, type VeilClient } from "../client/index.js";
import { expectCode } from "./support/expect-code.js";
import { type grpc, grpcJsClient } from "./support/grpc-js.js";
import { startTestServer, type TestServer } from "./support/server.js";
import { pidsWith } from "./support/processes.js";
import { tempDir } from "./support/temp-dir.js";
import { createConversations } from "../server/domain/conversations.js";
import type { Conversation } from "../server/domain/conversation.js";
import { openWorkDir } from "../server/domain/work-dir.js";

// The server runs in this process: its environment must never reach a command.
process.env.VEIL_SERVER_CANARY = "canary-SERVER-ENV-d00d";

const API_KEY = "sk-canary-Conv-4f9a1b2c3d4e5f60";
const MULTI = "-----BEGIN KEY-----\nline-one-canary-aaaa\nline-two-canary-bbbb\n-----END KEY-----";
const DB = { user: "app", password: "pw-canary-Zq8Xw3Vt" };
const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");


describe("conversations", () => {
  let s: TestServer;
  let veil: VeilClient;

  beforeAll(async () => {
    s = await startTestServer({ extraFlags: ["--output-limit-bytes", String(64 * 1024), "--max-conversations", "4"] });
    veil = await createVeilClient({ baseUrl: s.url, token: s.token, protocol: "grpc" });
    await veil.secrets.setSecrets({
      secrets: [
        { name: "API_KEY", text: API_KEY },
        { name: "MULTI", text: MULTI },
        { name: "DB", fields: DB },
        { name: "SHORT", text: "abc" },
        { name: "BOT_ONLY", text: "canary-bot-only-value", allowedAgents: ["bot"] },
      ],
    });
  });
  afterAll(async () => {
    await s.close();
    expect(s.logs.join("\n")).not.toMatch(/canary-(Conv|SERVER|bot|line)|pw-canary/);
  });

  it("injects declared secrets, masks them in stdout and stderr, and says what is in force", async () => {
    const run = await collect(
      veil.startConversation({
        secrets: ["API_KEY", "DB", "SHORT"],
        commands: ['echo "key=$API_KEY"; echo "pw=$DB_PASSWORD user=$DB_USER" >&2; echo "$DB"; echo "short=$SHORT"'],
        endWhenDone: true,
      }),
    );
    expect(run.started?.secrets).toEqual(["API_KEY", "DB", "SHORT"]);
    expect(run.started?.unmaskedSecrets).toEqual(["DB_USER", "SHORT"]);
    expect(["bubblewrap", "none"]).toContain(run.started?.sandbox);
    const [cmd] = run.commands;
    expect(cmd?.stdoutText).toBe("key=<secret-hidden>\n<secret-hidden>\nshort=abc\n");
    expect(cmd?.stderrText).toBe("pw=<secret-hidden> user=app\n");
    expect(cmd?.exitCode).toBe(0);
  });

  it("masks every derived form: base64 (both alphabets, every alignment), hex, percent, JSON, XML, each line", async () => {
    const forms = [
      'printf %s "$API_KEY" | base64 -w0',
      'printf "x%s" "$API_KEY" | base64 -w0',
      'printf "xy%s" "$API_KEY" | base64 -w0',
      'printf %s "$API_KEY" | base64 -w0 | tr "+/" "-_" | tr -d =',
      // Hex as od (coreutils) and Python print it.
      "printf %s \"$API_KEY\" | od -An -tx1 | tr -d ' \\n'",
      "python3 -c 'import os;print(os.environ[\"API_KEY\"].encode().hex().upper())'",
      "python3 -c 'import os,urllib.parse;print(urllib.parse.quote(os.environ[\"MULTI\"]))' 2>/dev/null || jq -rn 'env.MULTI|@uri' 2>/dev/null || node -e 'console.log(encodeURIComponent(process.env.MULTI))'",
      'printf "%s" "$MULTI" | sed -n 2p',
      "printf '{\"k\":\"%s\"}' \"$(printf %s \"$MULTI\" | sed ':a;N;$!ba;s/\\n/\\\\n/g')\"",
      "printf '<v>%s</v>' \"$(printf %s \"$DB_PASSWORD\" | sed 's/&/\\&amp;/g')\"",
    ];
    const run = await collect(veil.startConversation({ secrets: ["API_KEY", "MULTI", "DB"], commands: forms, endWhenDone: true }));
    expect(run.commands).toHaveLength(forms.length);
    const all = run.commands.map((c) => c.stdoutText + c.stderrText).join("\n");
    for (const c of run.commands) expect(c.stdoutText, c.command).toContain("<secret-hidden>");
    for (const leak of [API_KEY, "line-one-canary", "line-two-canary", DB.password, Buffer.from(API_KEY).toString("base64").slice(4, 24), Buffer.from(API_KEY).toString("hex").slice(4, 40)]) {
      expect(all).not.toContain(leak);
    }
  });

  it("masks a secret printed one character at a time", async () => {
    const run = await collect(
      veil.startConversation({
        secrets: ["API_KEY"],
        commands: ['for ((i=0; i<${#API_KEY}; i++)); do printf %s "${API_KEY:i:1}"; sleep 0.005; done; echo; printf "prompt> "'],
        endWhenDone: true,
      }),
    );
    expect(run.commands[0]?.stdoutText).toBe("<secret-hidden>\nprompt> ");
  });

  it("injects only referenced secrets under INJECT_REFERENCED, also inside single quotes", async () => {
    const run = await collect(
      veil.startConversation({
        secrets: ["API_KEY", "DB"],
        inject: Inject.REFERENCED,
        commands: ['echo "${DB_USER:-none}" "${#API_KEY}"', "echo ${API_KEY:+set}; env | grep -c ^DB || true", "bash -c 'echo ${DB_USER}'"],
        endWhenDone: true,
      }),
    );
    expect(run.commands.map((c) => c.stdoutText)).toEqual([`app ${API_KEY.length}\n`, "set\n0\n", "app\n"]);
  });

  it("keeps cwd and exports between commands, reports exit codes, and survives `exit`", async () => {
    const started = await collect(veil.startConversation({ commands: ["mkdir -p a/b && cd a/b && export GREETING=hi"] }));
    const id = started.started!.conversationId;
    try {
      const pwd = await veil.exec(id, 'pwd; echo "$GREETING"');
      expect(pwd.stdoutText).toMatch(/\/a\/b\nhi\n$/);
      expect((await veil.exec(id, "false")).exitCode).toBe(1);
      expect((await veil.exec(id, "exit 42")).exitCode).toBe(42);
      expect((await veil.exec(id, 'echo "$GREETING"; pwd')).stdoutText).toMatch(/^hi\n.*\/a\/b\n$/);
    } finally {
      await veil.conversations.endConversation({ conversationId: id });
    }
  });

  it("builds the environment from nothing: none of the server's variables reach a command", async () => {
    const run = await collect(veil.startConversation({ env: { PLAIN: "visible" }, commands: ["env"], endWhenDone: true }));
    const names = run.commands[0]!.stdoutText.split("\n").filter(Boolean).map((l) => l.split("=")[0]);
    expect(run.commands[0]!.stdoutText).toContain("PLAIN=visible");
    expect(run.commands[0]!.stdoutText).not.toContain("canary-SERVER-ENV");
    expect(run.commands[0]!.stdoutText).not.toContain("VEIL_MASTER_KEY");
    expect(new Set(names)).toEqual(new Set(["PATH", "HOME", "LANG", "TERM", "PLAIN", "PWD", "SHLVL", "_", "OLDPWD"].filter((n) => names.includes(n))));
  });

  it("freezes the secret snapshot at start: later updates and deletes do not reach it", async () => {
    await veil.secrets.setSecrets({ secrets: [{ name: "SNAP", text: "snapshot-value-one" }] });
    const started = await collect(veil.startConversation({ secrets: ["SNAP"] }));
    const id = started.started!.conversationId;
    try {
      await veil.secrets.setSecrets({ secrets: [{ name: "SNAP", text: "snapshot-value-two" }] });
      expect((await veil.exec(id, 'printf %s "$SNAP" | sha256sum | cut -c1-64')).stdoutText.trim()).toBe(sha256("snapshot-value-one"));
      await veil.secrets.deleteSecret({ name: "SNAP" });
      expect((await veil.exec(id, 'echo "$SNAP"')).stdoutText).toBe("<secret-hidden>\n");
    } finally {
      await veil.conversations.endConversation({ conversationId: id });
    }
  });

  it("fails the start before anything runs when a secret is missing or not granted", async () => {
    const marker = `ran-${Date.now()}`;
    await expectCode(collect(veil.startConversation({ secrets: ["NOPE"], commands: [`touch /tmp/${marker}`] })), Code.NotFound, /secrets\[0\]: no secret named NOPE/);
    await expectCode(
      collect(veil.startConversation({ agent: "other", secrets: ["BOT_ONLY"], commands: [`touch /tmp/${marker}`] })),
      Code.PermissionDenied,
      /not granted to agent other/,
    );
    expect(pidsWith(marker)).toEqual([]);
    const agent = await createVeilClient({ baseUrl: s.url, token: (await veil.tokens.createToken({ role: Role.AGENT, agent: "bot" })).token });
    await expectCode(collect(agent.startConversation({ agent: "someone-else", commands: ["true"] })), Code.PermissionDenied, /acts only as agent bot/);
    const ok = await collect(agent.startConversation({ secrets: ["BOT_ONLY"], commands: ['echo "$BOT_ONLY"'], endWhenDone: true }));
    expect(ok.commands[0]?.stdoutText).toBe("<secret-hidden>\n");
  });

  it("times out a command, kills its process group, and keeps the conversation usable", async () => {
    const started = await collect(veil.startConversation({ commands: ["cd /tmp; export KEPT=yes"] }));
    const id = started.started!.conversationId;
    try {
      const slow = await veil.exec(id, "sleep 31.5 & sleep 31.6", { timeoutMs: 300 });
      expect(slow.timedOut).toBe(true);
      await expect.poll(() => pidsWith("sleep 31.")).toEqual([]);
      expect((await veil.exec(id, 'echo "$KEPT"; pwd')).stdoutText).toBe("yes\n/tmp\n");
    } finally {
      await veil.conversations.endConversation({ conversationId: id });
    }
  });

  it("cuts a command at the output cap after masking, and says so", async () => {
    const run = await collect(
      veil.startConversation({ secrets: ["API_KEY"], commands: ['while :; do echo "$API_KEY"; done', "echo after"], endWhenDone: true }),
    );
    const [flood, after] = run.commands;
    expect(flood?.truncated).toBe(true);
    expect(flood!.stdout.length + flood!.stderr.length).toBeLessThanOrEqual(64 * 1024);
    expect(flood!.stdoutText).not.toContain(API_KEY.slice(0, 8));
    expect(flood!.stdoutText.startsWith("<secret-hidden>\n<secret-hidden>\n")).toBe(true);
    expect(after?.stdoutText).toBe("after\n");
  });

  it("kills every process, background ones included, on EndConversation", async () => {
    const started = await collect(veil.startConversation({ commands: ["sleep 977.5 &", "(sleep 977.6 &) ; setsid sleep 977.7 &"] }));
    await expect.poll(() => pidsWith("sleep 977.").length).toBeGreaterThanOrEqual(2);
    await veil.conversations.endConversation({ conversationId: started.started!.conversationId });
    await expect.poll(() => pidsWith("sleep 977.")).toEqual([]);
    await expectCode(veil.exec(started.started!.conversationId, "true"), Code.NotFound);
  });

  it("ends a conversation whose client dropped the stream, unless asked to keep it", async () => {
    for (const keep of [false, true]) {
      const abort = new AbortController();
      let id = "";
      await expect(
        (async () => {
          for await (const { event } of veil.startConversation({ commands: ["sleep 933.3"], keepOnDisconnect: keep }, { signal: abort.signal })) {
            if (event.case === "started") id = event.value.conversationId;
            if (event.case === "commandStarted") abort.abort();
          }
        })(),
      ).rejects.toThrow();
      await expect.poll(() => pidsWith("sleep 933.3")).toEqual([]);
      if (keep) {
        expect((await veil.exec(id, "echo alive")).stdoutText).toBe("alive\n");
        await veil.conversations.endConversation({ conversationId: id });
      } else {
        await expect.poll(() => veil.exec(id, "true").then(() => "live", (e: { code?: Code }) => e.code)).toBe(Code.NotFound);
      }
    }
  });

  it("hides conversations from other tenants and other agents, and caps live ones per tenant", async () => {
    const started = await collect(veil.startConversation({ agent: "bot", commands: [] }));
    const id = started.started!.conversationId;
    const otherTenant = await createVeilClient({ baseUrl: s.url, token: (await veil.tokens.createToken({ tenant: "acme", role: Role.ADMIN })).token });
    const otherAgent = await createVeilClient({ baseUrl: s.url, token: (await veil.tokens.createToken({ role: Role.AGENT, agent: "other" })).token });
    const bot = await createVeilClient({ baseUrl: s.url, token: (await veil.tokens.createToken({ role: Role.AGENT, agent: "bot" })).token });
    await expectCode(otherTenant.exec(id, "true"), Code.NotFound);
    await expectCode(otherAgent.conversations.endConversation({ conversationId: id }), Code.NotFound);
    expect((await bot.exec(id, "echo mine")).stdoutText).toBe("mine\n");
    const extra = [];
    for (let i = 0; i < 3; i++) extra.push((await collect(veil.startConversation({ commands: [] }))).started!.conversationId);
    await expectCode(collect(veil.startConversation({ commands: [] })), Code.ResourceExhausted, /at most 4 live conversations per tenant/);
    expect((await collect(otherTenant.startConversation({ commands: [], endWhenDone: true }))).started).toBeDefined();
    for (const c of [id, ...extra]) await veil.conversations.endConversation({ conversationId: c });
  });

  it("streams to an independent @grpc/grpc-js client, masked", async () => {
    const client = grpcJsClient(s.port, "ConversationService", s.token);
    try {
      const events = await new Promise<Record<string, unknown>[]>((resolve, reject) => {
        const got: Record<string, unknown>[] = [];
        const call = (client.raw as unknown as { StartConversation: (req: unknown, md: grpc.Metadata) => NodeJS.EventEmitter }).StartConversation(
          { secrets: ["API_KEY"], commands: ['echo "$API_KEY"; echo oops >&2; exit 7'], end_when_done: true },
          client.metadata(),
        );
        call.on("data", (e: Record<string, unknown>) => got.push(e));
        call.on("error", reject);
        call.on("end", () => resolve(got));
      });
      expect(events.map((e) => e.event)).toEqual(["started", "command_started", "output", "output", "command_exited"].slice(0, events.length));
      const outputs = events.filter((e) => e.event === "output").map((e) => e.output as { stream: string; data: Buffer });
      expect(Buffer.concat(outputs.filter((o) => o.stream === "STREAM_STDOUT").map((o) => o.data)).toString()).toBe("<secret-hidden>\n");
      expect(Buffer.concat(outputs.filter((o) => o.stream === "STREAM_STDERR").map((o) => o.data)).toString()).toBe("oops\n");
      expect((events.at(-1)!.command_exited as { exit_code: number }).exit_code).toBe(7);
    } finally {
      client.close();
    }
  });

  it("validates requests, naming the field", async () => {
    await expectCode(collect(veil.startConversation({ secrets: ["bad-name"] })), Code.InvalidArgument, /secrets\[0\]: must match/);
    await expectCode(collect(veil.startConversation({ workingDir: "../escape" })), Code.InvalidArgument, /working_dir: must be relative/);
    await expectCode(collect(veil.startConversation({ env: { "BAD-NAME": "x" } })), Code.InvalidArgument, /env/);
    await expectCode(veil.exec("conv_nope", "true"), Code.InvalidArgument, /conversation_id/);
    await expectCode(veil.exec(`conv_${"0".repeat(24)}`, "true"), Code.NotFound, /conversation_id/);
  });
});

describe("conversations: server shutdown", () => {
  it("kills every conversation's processes when the server stops", async () => {
    const s = await startTestServer();
    const veil = await createVeilClient({ baseUrl: s.url, token: s.token });
    await collect(veil.startConversation({ commands: ["sleep 966.1 &"] }));
    await collect(veil.startConversation({ commands: ["sleep 966.2 &"], keepOnDisconnect: true }));
    await expect.poll(() => pidsWith("sleep 966.").length).toBe(2);
    await s.close();
    await expect.poll(() => pidsWith("sleep 966.")).toEqual([]);
  });
});

describe("conversations: idle expiry and the unsandboxed path", () => {
  it("ends an idle conversation by itself and runs without a sandbox when told to", async () => {
    const s = await startTestServer({ extraFlags: ["--idle-timeout-ms", "1000", "--sandbox", "off"] });
    try {
      const veil = await createVeilClient({ baseUrl: s.url, token: s.token });
      const started = await collect(veil.startConversation({ commands: ["sleep 955.5 &"] }));
      expect(started.started?.sandbox).toBe("none");
      const id = started.started!.conversationId;
      await expect.poll(() => veil.exec(id, "true").then(() => "live", (e: { code?: Code }) => e.code), { timeout: 8000, interval: 1500 }).toBe(Code.NotFound);
      await expect.poll(() => pidsWith("sleep 955.5")).toEqual([]);
    } finally {
      await s.close();
    }
  });
});

describe("conversations: the shell opened ahead of the next one", () => {
  // The shell's age (seconds since it started), its directory, and whether its own start-up environment held the secret.
  const probe = [
    'echo "greeting=$GREETING key=$API_KEY"',
    "pwd",
    "cat ../../notes/a.txt; echo",
    "echo $(ls -A ../..)",
    "echo age=$(awk -v up=\"$(cut -d' ' -f1 /proc/uptime)\" -v hz=\"$(getconf CLK_TCK)\" '{print up - $22 / hz}' /proc/$$/stat)",
    "echo environ=$(tr '\\0' '\\n' < /proc/$$/environ | grep -c '^API_KEY=')",
  ].join("; ");

  it("hands the next conversation a shell already started, yet as its own: env, secrets, directory, files, an empty workspace", async () => {
    const s = await startTestServer();
    try {
      const veil = await createVeilClient({ baseUrl: s.url, token: s.token, protocol: "grpc" });
      await veil.secrets.setSecrets({ secrets: [{ name: "API_KEY", text: API_KEY }] });
      await collect(veil.startConversation({ commands: ["true"], endWhenDone: true }));
      // Long enough for the standby to be up, and for its age to tell it from a shell started by the call.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const run = await collect(
        veil.startConversation({
          secrets: ["API_KEY"],
          env: { GREETING: "hello there" },
          workingDir: "sub/dir",
          files: { "notes/a.txt": "file text" },
          commands: [probe, 'export LATER=kept; cd ..; echo "$GREETING"'],
          endWhenDone: true,
        }),
      );
      const [cmd, next] = run.commands;
      const lines = cmd!.stdoutText.trim().split("\n");
      expect(lines[0]).toBe("greeting=hello there key=<secret-hidden>");
      expect(lines[1]).toMatch(/\/sub\/dir$/);
      expect(lines[2]).toBe("file text");
      // Only what this conversation put there: the standby left nothing in its workspace.
      expect(lines[3]!.split(/\s+/).sort()).toEqual(["notes", "sub"]);
      // Started before the call: the standby. Its own environment never held the secret (it was exported to its children only).
      expect(Number(lines[4]!.replace("age=", ""))).toBeGreaterThan(1);
      expect(lines[5]).toBe("environ=0");
      expect(cmd!.exitCode).toBe(0);
      expect(next!.stdoutText).toBe("hello there\n");
    } finally {
      await s.close();
    }
  });

  it("makes the next shell as soon as a conversation ends, not only once the delay after a start has passed", async () => {
    const dir = tempDir();
    // A delay no test waits out: only a conversation's end can have made the next shell.
    const conversations = createConversations({ workDir: openWorkDir(`${dir.path}/work`), sandbox: { kind: "none" }, hidden: [], idleTimeoutMs: 60_000, maxPerTenant: 10, standbyDelayMs: 3_600_000 });
    const start = () =>
      conversations.start({
        owner: { tenant: "t", agent: "" },
        env: {},
        workingDir: "",
        network: false,
        inject: "declared",
        secrets: [{ name: "API_KEY", env: { API_KEY }, values: [API_KEY] }],
        defaultTimeoutMs: 30_000,
        outputLimitBytes: 1 << 20,
        keepOnDisconnect: false,
      });
    // Whether the shell's own start-up environment held the secret: 1 for a shell spawned for the call, 0 for one made ahead.
    const spawnedWithSecret = async (c: Conversation) => {
      let out = "";
      for await (const e of c.run("tr '\\0' '\\n' < /proc/$$/environ | grep -c '^API_KEY=' || true")) if (e.type === "output") out += Buffer.from(e.data).toString();
      return out.trim();
    };
    try {
      const first = await start();
      expect(await spawnedWithSecret(first)).toBe("1");
      // Started while the first is still open: nothing made ahead yet.
      const second = await start();
      expect(await spawnedWithSecret(second)).toBe("1");
      await first.end();
      const third = await start();
      expect(await spawnedWithSecret(third)).toBe("0");
      await second.end();
      await third.end();
    } finally {
      await conversations.closeAll();
      dir.cleanup();
    }
  });

  it("refuses a working_dir outside the workspace on the standby path too, and the next start still works", async () => {
    const s = await startTestServer();
    try {
      const veil = await createVeilClient({ baseUrl: s.url, token: s.token, protocol: "grpc" });
      await collect(veil.startConversation({ commands: ["true"], endWhenDone: true }));
      await new Promise((resolve) => setTimeout(resolve, 500));
      await expectCode(collect(veil.startConversation({ workingDir: "../..", commands: ["pwd"], endWhenDone: true })), Code.InvalidArgument, /working_dir/);
      const ok = await collect(veil.startConversation({ commands: ["echo fine"], endWhenDone: true }));
      expect(ok.commands[0]?.stdoutText).toBe("fine\n");
    } finally {
      await s.close();
    }
  });

  it("stops the standby shell with the server: nothing is left running in its work dir", async () => {
    const work = tempDir();
    const s = await startTestServer({ extraFlags: ["--work-dir", work.path] });
    const veil = await createVeilClient({ baseUrl: s.url, token: s.token, protocol: "grpc" });
    await collect(veil.startConversation({ commands: ["true"], endWhenDone: true }));
    // The standby: a live process whose directory is in the work dir, though no conversation is left.
    await expect.poll(() => pidsIn(work.path).length, { timeout: 5000 }).toBeGreaterThan(0);
    await s.close();
    await expect.poll(() => pidsIn(work.path)).toEqual([]);
    work.cleanup();
  });
});

/** Live processes whose working directory is at or below `dir`. */
function pidsIn(dir: string): number[] {
  const real = realpathSync(dir);
  return readdirSync("/proc")
    .filter((n) => /^\d+$/.test(n))
    .filter((pid) => {
      try {
        return readlinkSync(`/proc/${pid}/cwd`).startsWith(`${real}/`);
      } catch {
        return false;
      }
    })
    .map(Number);
}
