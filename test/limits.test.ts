// Resource limits per conversation: a fork bomb, a memory hog, a disk or file-size filler ends with the limit it reached, and nothing else suffers.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collect, createVeilClient, type VeilClient } from "../client/index.js";
import { ConfigError, parseServerConfig } from "../server/config.js";
import { detectCgroups, wrapCgroupJoin } from "../server/domain/executor/cgroup.js";
import { wrapRlimits } from "../server/domain/executor/limits.js";
import { canMountTmpfs } from "../server/domain/executor/workspace-mount.js";
import { detectSandbox, openShellSession } from "../server/domain/executor.js";
import type { CommandEvent } from "../server/domain/executor.js";
import { VEIL_BIN } from "./support/child-server.js";
import { startTestServer, type TestServer } from "./support/server.js";
import { tempDir } from "./support/temp-dir.js";

const MiB = 1024 * 1024;
const LIMITS = { processes: 64, memory: 128 * MiB, disk: 32 * MiB, fileSize: 24 * MiB };
const hasBwrap = (await detectSandbox("required")).kind === "bubblewrap";
const cgroups = detectCgroups();
const mountable = canMountTmpfs();
// Appended to a test's name when it is skipped, so the report says why.
const noCgroup = cgroups.support === undefined ? ` (no usable cgroup: ${cgroups.reason})` : "";
const noMount = mountable ? "" : " (this process may not mount a tmpfs on the workspace)";

describe("limit flags", () => {
  it("has defaults in `veil serve --help`", () => {
    const res = spawnSync(process.execPath, [VEIL_BIN, "serve", "--help"], { encoding: "utf8" });
    expect(res.status).toBe(0);
    for (const line of [
      /--max-processes VALUE\s+VEIL_MAX_PROCESSES \(default 256\)/,
      /--memory-limit-bytes VALUE\s+VEIL_MEMORY_LIMIT_BYTES \(default 1073741824\)/,
      /--disk-limit-bytes VALUE\s+VEIL_DISK_LIMIT_BYTES \(default 1073741824\)/,
      /--file-size-limit-bytes VALUE\s+VEIL_FILE_SIZE_LIMIT_BYTES \(default 268435456\)/,
    ]) {
      expect(res.stdout).toMatch(line);
    }
  });

  it("rejects bad values with a one-line error naming the flag and the rule", () => {
    const cases: [string[], Record<string, string>, string][] = [
      [["--max-processes", "0"], {}, "--max-processes (or VEIL_MAX_PROCESSES): must be at least 8"],
      [["--memory-limit-bytes", String(2 ** 51)], {}, `--memory-limit-bytes (or VEIL_MEMORY_LIMIT_BYTES): must be at most ${2 ** 50}`],
      [[], { VEIL_DISK_LIMIT_BYTES: "1.5" }, "--disk-limit-bytes (or VEIL_DISK_LIMIT_BYTES): must be a whole number"],
      [["--file-size-limit-bytes", "100"], {}, "--file-size-limit-bytes (or VEIL_FILE_SIZE_LIMIT_BYTES): must be at least 65536"],
    ];
    for (const [argv, env, message] of cases) {
      expect(() => parseServerConfig(argv, env)).toThrow(new ConfigError(message));
    }
    const res = spawnSync(process.execPath, [VEIL_BIN, "serve", "--max-processes", "3"], { encoding: "utf8" });
    expect({ code: res.status, stderr: res.stderr }).toEqual({ code: 2, stderr: "veil serve: --max-processes (or VEIL_MAX_PROCESSES): must be at least 8\n" });
  });

  it("wraps a shell in the agreed order: cgroup join, then rlimits, then the shell", () => {
    const argv = wrapCgroupJoin(wrapRlimits(["/usr/bin/bwrap", "--", "/bin/bash"], { processes: 9, fileSizeBytes: 4096 }), ["/cg/a/cgroup.procs"]);
    expect(argv.slice(0, 2)).toEqual(["/bin/sh", "-c"]);
    expect(argv.slice(3, 6)).toEqual(["veil-cgroup-join", "/cg/a/cgroup.procs", "--"]);
    if (argv[6]?.endsWith("prlimit")) expect(argv.slice(7)).toEqual(["--nproc=9:9", "--fsize=4096:4096", "--core=0", "--", "/usr/bin/bwrap", "--", "/bin/bash"]);
  });
});

describe.skipIf(!hasBwrap)(hasBwrap ? "limits in bubblewrap" : "limits in bubblewrap (bubblewrap is not usable here)", () => {
  let s: TestServer;
  let veil: VeilClient;

  beforeAll(async () => {
    s = await startTestServer({
      extraFlags: [
        "--sandbox",
        "required",
        "--max-processes",
        String(LIMITS.processes),
        "--memory-limit-bytes",
        String(LIMITS.memory),
        "--disk-limit-bytes",
        String(LIMITS.disk),
        "--file-size-limit-bytes",
        String(LIMITS.fileSize),
      ],
    });
    veil = await createVeilClient({ baseUrl: s.url, token: s.token, protocol: "grpc" });
  });
  afterAll(async () => {
    await s?.close();
  });

  it("logs which mechanisms enforce the limits, once at start", () => {
    const lines = s.logs.filter((line) => line.includes('"msg":"limits"'));
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: "info", cgroup: expect.stringMatching(/^(v1|v2|none)$/), fileSize: "RLIMIT_FSIZE" });
  });

  /** Starts a kept conversation and returns its id and its workspace path (HOME in the sandbox). */
  async function open(): Promise<{ id: string; home: string }> {
    const run = await collect(veil.startConversation({ commands: ['printf %s "$HOME"'], keepOnDisconnect: true }));
    return { id: run.started!.conversationId, home: run.commands[0]!.stdoutText };
  }
  const runIn = async (id: string, command: string) => (await collect(veil.conversations.runCommand({ conversationId: id, command, timeoutMs: 20_000 }))).commands[0]!;

  /** While `hog` runs in one conversation, another conversation's commands and a vault write still work; then the hog's conversation does too. */
  async function contained(hog: string) {
    const [a, b] = await Promise.all([open(), open()]);
    const [hit, bystander, write] = await Promise.all([
      runIn(a.id, hog),
      runIn(b.id, "for i in 1 2 3 4 5; do echo $i; sleep 0.1; done"),
      veil.secrets.setSecrets({ secrets: [{ name: `AFTER_${Date.now()}`, text: "vault-still-writes" }] }),
    ]);
    expect(bystander).toMatchObject({ exitCode: 0, limit: "", stdoutText: "1\n2\n3\n4\n5\n" });
    expect(write.secrets).toHaveLength(1);
    expect(await runIn(a.id, "echo next")).toMatchObject({ exitCode: 0, limit: "", stdoutText: "next\n" });
    return { hit, a, b, end: () => Promise.all([a, b].map((c) => veil.conversations.endConversation({ conversationId: c.id }))) };
  }

  /** A file of the conversation's pids cgroup. */
  function pidsFile(home: string, name: string): string {
    const support = cgroups.support!;
    return join(support.version === 2 ? support.parent : support.pidsParent, `veil-${process.pid}-${basename(home)}`, name);
  }

  it.skipIf(cgroups.support === undefined)(`ends a fork bomb with limit processes, never above the cap${noCgroup}`, async () => {
    const { hit, a, end } = await contained(":(){ :|:& };:; sleep 10");
    expect(hit).toMatchObject({ exitCode: 137, limit: "processes" });
    expect(hit.durationMs).toBeLessThan(5_000);
    const peak = pidsFile(a.home, "pids.peak");
    if (existsSync(peak)) expect(Number(readFileSync(peak, "utf8"))).toBeLessThanOrEqual(LIMITS.processes);
    await end();
  });

  it.skipIf(cgroups.support === undefined)(`kills a fork bomb left in the background once it reaches the cap${noCgroup}`, async () => {
    const a = await open();
    // The classic bomb backgrounds itself and runs on between commands. It starts a moment after its
    // command ended: started at once, it can reach the cap before the shell's own second fork of `:|:&`,
    // and then the command itself reached the limit (the test above).
    expect(await runIn(a.id, "(sleep 1; :(){ :|:& };:) &")).toMatchObject({ exitCode: 0, limit: "" });
    const current = pidsFile(a.home, "pids.current");
    const deadline = Date.now() + 5_000;
    // The shell and the bomb are gone (no processes left in the cgroup) soon after the bomb reaches the cap.
    while (Number(readFileSync(current, "utf8")) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(Number(readFileSync(current, "utf8"))).toBe(0);
    expect(await runIn(a.id, "echo next")).toMatchObject({ exitCode: 0, limit: "", stdoutText: "next\n" });
    await veil.conversations.endConversation({ conversationId: a.id });
  });

  it.skipIf(cgroups.support === undefined)(`ends a loop of 600 background sleeps with limit processes${noCgroup}`, async () => {
    const { hit, end } = await contained("for i in $(seq 600); do sleep 100 & done; wait");
    expect(hit).toMatchObject({ limit: "processes" });
    await end();
  });

  it.skipIf(cgroups.support === undefined)(`ends a memory hog with limit memory${noCgroup}`, async () => {
    const hog = "command -v python3 >/dev/null && exec python3 -c 'x = bytearray(512 * 1024 * 1024); print(len(x))'; head -c 512M /dev/zero | tail";
    const { hit, end } = await contained(hog);
    expect(hit).toMatchObject({ limit: "memory" });
    expect(hit.stdoutText).toBe("");
    await end();
  });

  it.skipIf(!mountable)(`ends a workspace filler with limit disk, at the cap, and the space can be freed${noMount}`, async () => {
    const { hit, a, end } = await contained("head -c 20M /dev/zero > one && head -c 2G /dev/zero > two");
    expect(hit).toMatchObject({ limit: "disk" });
    const used = await runIn(a.id, "du -sb one two | awk '{ s += $1 } END { print s }'");
    expect(Number(used.stdoutText)).toBeLessThanOrEqual(LIMITS.disk);
    expect(Number(used.stdoutText)).toBeGreaterThan(LIMITS.disk - MiB);
    // A command that cleans up is not blamed for the full workspace it found.
    expect(await runIn(a.id, "rm one two && head -c 1M /dev/zero > small && echo ok")).toMatchObject({ exitCode: 0, limit: "", stdoutText: "ok\n" });
    await end();
  });

  it("ends a /tmp or /dev/shm filler with limit disk, at the cap", async () => {
    for (const dir of ["/tmp", "/dev/shm"]) {
      const { hit, end } = await contained(`head -c 20M /dev/zero > ${dir}/one && head -c 2G /dev/zero > ${dir}/two; du -sb ${dir} | cut -f1`);
      expect({ dir, limit: hit.limit }).toEqual({ dir, limit: "disk" });
      await end();
    }
  });

  it("ends a file over the file-size cap with limit file_size", async () => {
    const a = await open();
    const hit = await runIn(a.id, "head -c 30M /dev/zero > big");
    expect(hit).toMatchObject({ exitCode: 153, limit: "file_size" });
    expect(await runIn(a.id, "stat -c %s big")).toMatchObject({ exitCode: 0, limit: "", stdoutText: `${LIMITS.fileSize}\n` });
    await veil.conversations.endConversation({ conversationId: a.id });
  });
});

describe("the disk watchdog, where the workspace is no tmpfs of its own", () => {
  it("ends a command that grows the workspace past the cap with limit disk", async () => {
    const dir = tempDir();
    const detected = await detectSandbox("required");
    const sandbox = detected.kind === "bubblewrap" ? detected : ({ kind: "none" } as const);
    const session = await openShellSession({
      workspace: dir.path,
      env: {},
      sandbox,
      limits: { maxProcesses: 256, memoryBytes: 1024 * MiB, diskBytes: 8 * MiB, fileSizeBytes: 256 * MiB },
    });
    try {
      // A slow writer: the watchdog measures a few times a second, so a fast one would overshoot further.
      let exit: Extract<CommandEvent, { type: "exit" }> | undefined;
      for await (const event of session.run("for i in $(seq 200); do head -c 1M /dev/zero >> big; sleep 0.05; done", { timeoutMs: 20_000 })) {
        if (event.type === "exit") exit = event;
      }
      expect(exit).toMatchObject({ exitCode: 137, limit: "disk" });
      const { size } = statSync(join(dir.path, "big"));
      expect(size).toBeGreaterThan(8 * MiB);
      expect(size).toBeLessThan(100 * MiB);
    } finally {
      await session.close();
      dir.cleanup();
    }
  });
});
