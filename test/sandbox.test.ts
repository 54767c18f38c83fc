// The sandbox as an attacker meets it: what a command can reach, the per-conversation uid, no bwrap, --sandbox off, crash leftovers, the cap.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { Code, createClient } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collect, createVeilClient, type VeilClient } from "../client/index.js";
import { Health, HealthCheckResponse_ServingStatus } from "../gen/grpc/health/v1/health_pb.js";
import { detectSandbox } from "../server/domain/executor.js";
import { DYNAMIC_UID_BASE, DYNAMIC_UID_COUNT } from "../server/domain/executor/dynamic-user.js";
import { ETC_ALLOW_LIST } from "../server/domain/executor/sandbox-fs.js";
import { startTestApp } from "./support/app.js";
import { spawnServer, VEIL_BIN } from "./support/child-server.js";
import { expectCode } from "./support/expect-code.js";
import { startTestServer, type TestServer } from "./support/server.js";
import { tempDir } from "./support/temp-dir.js";
import { pidsWith } from "./support/processes.js";

// The server runs in this process: its environment is what /proc/<pid>/environ would give away.
process.env.VEIL_SANDBOX_TEST_CANARY = "canary-ENVIRON-7c1e";

const hasBwrap = (await detectSandbox("required")).kind === "bubblewrap";
const isRoot = process.getuid?.() === 0;
const has = (tool: string) => spawnSync("sh", ["-c", `command -v ${tool}`]).status === 0;
const MASTER_KEY = Buffer.alloc(32, 9).toString("base64");

/** Runs one command in a fresh conversation that ends when done; stdout and stderr together. */
async function sh(veil: VeilClient, command: string, options: { network?: boolean } = {}): Promise<string> {
  const run = await collect(veil.startConversation({ commands: [command], endWhenDone: true, network: options.network ?? false }));
  return run.commands.map((c) => c.stdoutText + c.stderrText).join("");
}

/**
 * What a command can reach through inherited fds: the fds of its own shell, of its parents up to the
 * sandbox's pid 1, each as the path it points to, and what writing to fd 20 (where LevelDB's write-ahead
 * log sat) does. LevelDB opens its files without close-on-exec, so these are the vault's files if any leak.
 */
const FD_PROBE =
  'for p in $$ $PPID 1; do for f in /proc/$p/fd/*; do [ -e "$f" ] && echo "fd $p ${f##*/} $(readlink "$f")"; done; done 2>/dev/null; for n in 9 18 19 20 21 22 23 24; do (echo x >&$n) 2>/dev/null && echo "wrote fd $n"; done; echo probe-done';

/** Asserts no fd a command holds or can reach points into the data dir, and none of them is writable beyond stdio. */
function expectNoServerFds(out: string, dataDir: string): void {
  expect(out).toContain("probe-done");
  expect(out).not.toContain(dataDir);
  expect(out).not.toMatch(/MANIFEST-|\/LOCK$|\d{6}\.log$/m);
  expect(out).not.toMatch(/wrote fd/);
}

describe.skipIf(!hasBwrap)(hasBwrap ? "bubblewrap: what a command can reach" : "bubblewrap: what a command can reach (bubblewrap not installed)", () => {
  // As root, the server's files are placed under bound system dirs on purpose (/usr/local, /etc/ssl):
  // they must be hidden wherever they are, not just because they happen to live in /tmp.
  const base = isRoot ? "/usr/local" : undefined;
  const dataDir = base ? mkdtempSync(join(base, "veil-sbx-data-")) : tempDir().path;
  const workDir = base ? mkdtempSync(join(base, "veil-sbx-work-")) : tempDir().path;
  const keyFile = isRoot && existsSync("/etc/ssl") ? `/etc/ssl/veil-sbx-${process.pid}.key` : join(tempDir().path, "master.key");
  let s: TestServer;
  let veil: VeilClient;

  beforeAll(async () => {
    writeFileSync(keyFile, `${MASTER_KEY}\n`, { mode: 0o600 });
    s = await startTestServer({ dataDir, masterKey: "", extraFlags: ["--master-key-file", keyFile, "--work-dir", workDir] });
    veil = await createVeilClient({ baseUrl: s.url, token: s.token });
  });
  afterAll(async () => {
    await s.close();
    for (const path of [dataDir, workDir, keyFile]) rmSync(path, { recursive: true, force: true });
  });

  it("holds no fd of the server: none of the vault's LevelDB files reaches a command", async () => {
    expectNoServerFds(await sh(veil, FD_PROBE), s.dataDir);
  });

  it("runs commands as an ordinary user with a passwd entry, never uid 0", async () => {
    const out = await sh(veil, 'id -u; id -g; whoami; id -gn; test "$(getent passwd "$(id -u)" | cut -d: -f6)" = "$HOME" && echo home-ok');
    expect(out).toBe("1000\n1000\nveil\nveil\nhome-ok\n");
    if (isRoot) {
      // On the host, the sandbox's processes run as the conversation's own uid from the dynamic range.
      const run = await collect(veil.startConversation({ commands: ["sleep 933.7 & echo started"] }));
      // The background job may still be a forked bash that has not exec'd sleep yet.
      await expect.poll(() => pidsWith("sleep 933.7").length).toBe(1);
      const [pid] = pidsWith("sleep 933.7");
      const uid = statSync(`/proc/${pid}`).uid;
      expect(uid).toBeGreaterThanOrEqual(DYNAMIC_UID_BASE);
      expect(uid).toBeLessThan(DYNAMIC_UID_BASE + DYNAMIC_UID_COUNT);
      await veil.conversations.endConversation({ conversationId: run.started!.conversationId });
      expect(pidsWith("sleep 933.7")).toEqual([]);
    }
  });

  it("cannot read the operator token, the master key or the data dir, wherever they live", async () => {
    const out = await sh(
      veil,
      [
        "cat ../../admin.token ../../../admin.token ../../master.key 2>&1",
        `cat ${dataDir}/admin.token 2>&1`,
        `ls -A ${dataDir} | wc -l`,
        `wc -c < ${keyFile}`,
        `cat ${keyFile}`,
        // What is hidden keeps only its name: an empty file or directory.
        "find / -path /proc -prune -o \\( -name admin.token -o -name master.key -o -name 'veil-sbx-*' -o -name CURRENT -o -name '*.ldb' \\) -print 2>/dev/null | sort",
        `find ${dataDir} ${workDir} -mindepth 1 -maxdepth 1 -not -path '${workDir}/srv-*' 2>/dev/null | wc -l`,
      ].join("\n"),
    );
    expect(out).not.toContain(s.token);
    expect(out).not.toContain(MASTER_KEY);
    const names = [...(base ? [keyFile, dataDir, workDir] : [])].sort().join("\n");
    expect(out).toMatch(new RegExp(`^(cat: [^\\n]*No such file or directory\\n){4}0\\n0\\n${names ? `${names}\\n` : ""}0\\n$`));
  });

  it("cannot reach other conversations' workspaces", async () => {
    const other = await collect(veil.startConversation({ commands: ["echo ws-canary-A > mine.txt; pwd"] }));
    const otherPath = other.commands[0]!.stdoutText.trim();
    expect(readFileSync(join(otherPath, "mine.txt"), "utf8")).toBe("ws-canary-A\n");
    const out = await sh(
      veil,
      [`cat ${otherPath}/mine.txt 2>/dev/null`, `cd ${otherPath} 2>/dev/null && echo entered`, `ls -A ${workDir} ${otherPath}/.. 2>/dev/null | grep -v "^$" | grep -vc ":$"`, "ls -A .. | wc -l"].join(
        "; ",
      ),
    );
    // Only its own workspace is in sight: ls shows one entry for its own parent, none elsewhere.
    expect(out).not.toContain("ws-canary-A");
    expect(out).not.toContain("entered");
    await veil.conversations.endConversation({ conversationId: other.started!.conversationId });
  });

  it("sees only its own processes: not the server's /proc, environ or command line", async () => {
    const out = await sh(
      veil,
      [
        "ls /proc | grep -cE '^[0-9]+$'",
        `cat /proc/${process.pid}/environ 2>/dev/null | wc -c`,
        "cat /proc/1/environ | tr '\\0' '\\n' | grep -c VEIL_",
        "cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' ' | grep -c -e '[n]ode' -e '[v]itest'",
      ].join("; "),
    );
    const [count, serverEnviron, veilVars, serverCmdlines] = out.trim().split("\n").map(Number);
    expect(count).toBeLessThan(8);
    expect(serverEnviron).toBe(0);
    expect(veilVars).toBe(0);
    expect(serverCmdlines).toBe(0);
    expect(out).not.toContain("canary-ENVIRON");
  });

  it("sees only the /etc allow-list: no shadow, no host keys, no TLS private keys", async () => {
    const out = await sh(veil, "ls -A /etc; echo --; cat /etc/shadow /etc/gshadow 2>&1 | wc -l; ls -A /etc/ssl/private 2>/dev/null | wc -l; ls /etc/ssh");
    const [etc = "", rest = ""] = out.split("--\n");
    const allowed = new Set([...ETC_ALLOW_LIST.map((name) => name.split("/")[0]), "passwd", "group"]);
    const listed = etc.trim().split("\n");
    expect(listed.filter((name) => !allowed.has(name))).toEqual([]);
    expect(listed).toContain("passwd");
    expect(rest.split("\n").slice(0, 2)).toEqual(["2", "0"]);
    expect(rest).not.toMatch(/ssh_host_/);
  });

  it.skipIf(!has("git") || !has("python3") || !has("curl"))("keeps git, python3 (with TLS) and curl working", async () => {
    const out = await sh(
      veil,
      [
        "git init -q repo && cd repo && git -c user.email=a@example.com -c user.name=A commit -q --allow-empty -m one && git log --format=%s",
        "python3 -c 'import ssl, json; ctx = ssl.create_default_context(); print(\"py\", ctx.cert_store_stats()[\"x509_ca\"] > 0)'",
        "curl --version | head -c 4; echo",
        "test -s /etc/ssl/certs/ca-certificates.crt && echo ca-bundle",
        "getent hosts localhost | head -c 9; echo",
      ].join("\n"),
    );
    expect(out).toBe("one\npy True\ncurl\nca-bundle\n127.0.0.1\n");
  });

  it.skipIf(!has("curl"))("reaches the host with curl when the conversation has network", async () => {
    const server: Server = createServer((_, res) => res.end("pong"));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const port = (server.address() as { port: number }).port;
      expect(await sh(veil, `curl -s http://127.0.0.1:${port}/`, { network: true })).toBe("pong");
    } finally {
      server.close();
    }
  });
});

describe("without a usable bubblewrap", () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ extraFlags: ["--bwrap", "/bin/false"] });
  });
  afterAll(() => s.close());

  it("still serves the vault and health, and refuses StartConversation saying how to fix it", async () => {
    const veil = await createVeilClient({ baseUrl: s.url, token: s.token });
    const { createGrpcTransport } = await import("@connectrpc/connect-node");
    const health = createClient(Health, createGrpcTransport({ baseUrl: s.url }));
    expect((await health.check({})).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    await veil.secrets.setSecrets({ secrets: [{ name: "NO_BWRAP", text: "canary-nobwrap-55aa" }] });
    expect((await veil.secrets.getSecret({ name: "NO_BWRAP" })).text).toBe("canary-nobwrap-55aa");
    const error = await expectCode(collect(veil.startConversation({ secrets: ["NO_BWRAP"], commands: ["echo hi"] })), Code.FailedPrecondition, /bubblewrap/);
    expect(error.rawMessage).toContain("/bin/false failed");
    expect(error.rawMessage).toContain("apt-get install bubblewrap");
    expect(error.rawMessage).toMatch(/--sandbox off to run commands without a sandbox: they then see the host's file system/);
    // Logged once, as a warning, at start; with the same text the caller gets.
    const warnings = s.logs.map((l) => JSON.parse(l) as { level: string; msg: string }).filter((l) => l.msg.includes("apt-get install bubblewrap"));
    expect(warnings).toEqual([expect.objectContaining({ level: "warn", msg: error.rawMessage })]);
  });

  it("makes `veil run` print the server's message and exit 125", async () => {
    const dir = tempDir();
    const server = await spawnServer(dir.path, { VEIL_BWRAP: "/nonexistent/bwrap" });
    try {
      const res = spawnSync(process.execPath, [VEIL_BIN, "run", "--", "echo hi"], {
        encoding: "utf8",
        env: { PATH: process.env.PATH ?? "", VEIL_URL: server.url, VEIL_TOKEN: server.token },
      });
      expect(res.status).toBe(125);
      expect(res.stdout).toBe("");
      expect(res.stderr).toMatch(/^veil run: commands are disabled: .*\/nonexistent\/bwrap does not exist.*apt-get install bubblewrap.*--sandbox off/);
    } finally {
      await server.stop();
      dir.cleanup();
    }
  });
});

describe.skipIf(!isRoot)(isRoot ? "--sandbox off as root" : "--sandbox off as root (tests run as non-root)", () => {
  let s: TestServer;
  let veil: VeilClient;
  beforeAll(async () => {
    s = await startTestServer({ extraFlags: ["--sandbox", "off"] });
    veil = await createVeilClient({ baseUrl: s.url, token: s.token });
  });
  afterAll(() => s.close());

  it("holds no fd of the server there either: none of the vault's LevelDB files reaches a command", async () => {
    expectNoServerFds(await sh(veil, FD_PROBE), s.dataDir);
  });

  it("warns at start, and runs each conversation as its own uid that cannot read the server's files or /proc", async () => {
    expect(s.logs.some((l) => /"level":"warn","msg":"--sandbox off: commands run without bubblewrap; each conversation runs as its own unprivileged uid/.test(l))).toBe(true);
    const other = await collect(veil.startConversation({ commands: ["echo ws-canary-B > mine.txt; pwd; id -u"] }));
    const [otherPath, otherUid] = other.commands[0]!.stdoutText.trim().split("\n");
    const run = await collect(
      veil.startConversation({
        endWhenDone: true,
        commands: [
          "id -u",
          `ls ${s.dataDir} 2>&1; cat ${s.dataDir}/admin.token 2>&1`,
          `cat /proc/${process.pid}/environ 2>&1 | head -c 200`,
          `cat ${otherPath}/mine.txt 2>&1; ls ${join(otherPath!, "..")} 2>&1`,
        ],
      }),
    );
    expect(run.started?.sandbox).toBe("none");
    const [uidOut, dataOut, environOut, otherOut] = run.commands.map((c) => c.stdoutText + c.stderrText);
    const uid = Number(uidOut);
    expect(uid).toBeGreaterThanOrEqual(DYNAMIC_UID_BASE);
    expect(uid).not.toBe(Number(otherUid));
    expect(dataOut).toMatch(/Permission denied[\s\S]*Permission denied/);
    expect(dataOut).not.toContain(s.token);
    expect(environOut).toMatch(/Permission denied/);
    expect(environOut).not.toContain("canary-ENVIRON");
    expect(otherOut).toMatch(/Permission denied[\s\S]*Permission denied/);
    expect(otherOut).not.toContain("ws-canary-B");
    await veil.conversations.endConversation({ conversationId: other.started!.conversationId });
  });

  it("kills a setsid double fork on EndConversation", async () => {
    const run = await collect(veil.startConversation({ commands: ["setsid sh -c 'sleep 944.4 &' ; echo forked"] }));
    expect(run.commands[0]!.stdoutText).toBe("forked\n");
    await expect.poll(() => pidsWith("sleep 944.4").length).toBe(1);
    await veil.conversations.endConversation({ conversationId: run.started!.conversationId });
    expect(pidsWith("sleep 944.4")).toEqual([]);
  });

  it("kills a SIGKILLed server's leftover commands at the next start", async () => {
    const data = tempDir();
    const first = await spawnServer(data.path, { VEIL_SANDBOX: "off" });
    try {
      const veil = await createVeilClient({ baseUrl: first.url, token: first.token });
      await collect(veil.startConversation({ commands: ["setsid sh -c 'sleep 955.9 &'"], keepOnDisconnect: true }));
      await expect.poll(() => pidsWith("sleep 955.9").length).toBe(1);
      await first.kill9();
      expect(pidsWith("sleep 955.9")).toHaveLength(1);
      const second = await spawnServer(data.path, { VEIL_SANDBOX: "off" });
      expect(pidsWith("sleep 955.9")).toEqual([]);
      // Any server starting on this machine reaps a dead server's uids, so with test files running
      // in parallel another test's server may have done it (and logged it) first: only the result counts.
      await second.stop();
    } finally {
      for (const pid of pidsWith("sleep 955.9")) process.kill(pid, "SIGKILL");
      data.cleanup();
    }
  });
});

describe("crash leftovers and shared work dirs", () => {
  it("removes a killed server's workspaces (unmounting them first) at the next start, and spares a live server's", async () => {
    const data = tempDir();
    const otherData = tempDir();
    const work = tempDir();
    const env = { VEIL_WORK_DIR: work.path, VEIL_SANDBOX: hasBwrap ? "required" : "off" };
    const first = await spawnServer(data.path, env);
    const live = await spawnServer(otherData.path, env);
    try {
      const pwd = async (url: string, token: string) => {
        const veil = await createVeilClient({ baseUrl: url, token });
        const run = await collect(veil.startConversation({ commands: ["echo left > file; pwd"], keepOnDisconnect: true }));
        return run.commands[0]!.stdoutText.trim();
      };
      const crashed = await pwd(first.url, first.token);
      const spared = await pwd(live.url, live.token);
      expect(crashed.startsWith(`${work.path}/srv-`)).toBe(true);
      // A leftover with a mount on it, as the size-capped workspace tmpfs leaves after a crash.
      const mounted = join(work.path, "srv-4194305-1", "ws_leftover");
      mkdirSync(mounted, { recursive: true });
      const canMount = isRoot && spawnSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", mounted]).status === 0;
      await first.kill9();
      expect(existsSync(join(crashed, "file"))).toBe(true);
      const second = await spawnServer(data.path, env);
      try {
        expect(existsSync(crashed)).toBe(false);
        expect(existsSync(join(work.path, "srv-4194305-1"))).toBe(false);
        if (canMount) expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(mounted);
        expect(readFileSync(join(spared, "file"), "utf8")).toBe("left\n");
        expect(second.stderr()).toContain("removed a workspace dir left by a server that is gone");
      } finally {
        await second.stop();
      }
    } finally {
      await live.stop();
      for (const dir of [data, otherData, work]) dir.cleanup();
    }
  });

  it("puts workspaces outside the data dir by default", async () => {
    const t = await startTestApp();
    try {
      const run = await collect(t.admin.startConversation({ commands: ["pwd"], endWhenDone: true }));
      const path = run.commands[0]!.stdoutText.trim();
      expect(path.startsWith(t.dataDir)).toBe(false);
      expect(path).toMatch(/\/veil-work-[0-9a-f]{12}\/srv-\d+-\d+\/ws_[^/]+$/);
    } finally {
      await t.close();
    }
  });
});

describe("the per-tenant cap under concurrent starts", () => {
  it("lets exactly 5 of 40 concurrent starts through with a cap of 5; the rest are RESOURCE_EXHAUSTED", async () => {
    const t = await startTestApp({ extraFlags: ["--max-conversations", "5", ...(hasBwrap ? [] : ["--sandbox", "off"])] });
    try {
      const results = await Promise.allSettled(Array.from({ length: 40 }, () => collect(t.admin.startConversation({ commands: [] }))));
      const ok = results.filter((r) => r.status === "fulfilled");
      const refused = results.filter((r) => r.status === "rejected").map((r) => (r as PromiseRejectedResult).reason as { code: Code });
      expect(ok).toHaveLength(5);
      expect(refused.map((e) => Code[e.code])).toEqual(Array(35).fill("ResourceExhausted"));
      expect(t.app.conversations.size).toBe(5);
      // A failed start gives its slot back: ending one lets one more in.
      const first = (ok[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof collect>>>).value.started!.conversationId;
      await t.admin.conversations.endConversation({ conversationId: first });
      await expect(collect(t.admin.startConversation({ commands: [], endWhenDone: true }))).resolves.toBeDefined();
    } finally {
      await t.close();
    }
  });
});
