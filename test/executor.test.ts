// The terminal executor against a real bash, with and without a real bubblewrap sandbox.
import { mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  type BubblewrapSandbox,
  type CommandEvent,
  type CommandOptions,
  detectSandbox,
  EXIT_CODE_KILLED,
  EXIT_CODE_TIMED_OUT,
  openShellSession,
  type ShellOptions,
  type ShellSession,
} from "../server/domain/executor.js";
import { isRunning, processTree } from "../server/domain/executor/process-tree.js";

// The server's own secrets live in its environment: none of it may reach a command.
process.env.VEIL_MASTER_KEY = "canary-master-key-4f1d";

const detected = await detectSandbox("required");
const hasBwrap = detected.kind === "bubblewrap";
/** The working bubblewrap (only read by tests that skip without one). */
const bwrap = (hasBwrap ? detected : { kind: "bubblewrap", bwrap: "/nonexistent/bwrap", asUser: false }) as BubblewrapSandbox;
const none = { kind: "none" } as const;
const modes = [
  { name: "without sandbox", sandbox: none as ShellOptions["sandbox"], skip: false },
  { name: hasBwrap ? "in bubblewrap" : "in bubblewrap (bubblewrap not installed)", sandbox: bwrap as ShellOptions["sandbox"], skip: !hasBwrap },
];

interface Result {
  stdout: string;
  stderr: string;
  raw: { stdout: Buffer; stderr: Buffer };
  exit: Extract<CommandEvent, { type: "exit" }>;
  events: CommandEvent[];
}

async function run(session: ShellSession, command: string, options: Partial<CommandOptions> = {}): Promise<Result> {
  const chunks = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
  const events: CommandEvent[] = [];
  let exit: Result["exit"] | undefined;
  for await (const event of session.run(command, { timeoutMs: 10_000, ...options })) {
    events.push(event);
    if (event.type === "output") chunks[event.stream].push(Buffer.from(event.data));
    else exit = event;
  }
  if (!exit) throw new Error("no exit event");
  const raw = { stdout: Buffer.concat(chunks.stdout), stderr: Buffer.concat(chunks.stderr) };
  return { stdout: raw.stdout.toString(), stderr: raw.stderr.toString(), raw, exit, events };
}

/** Host pids of live processes whose command line contains `fragment` (a unique sleep duration). */
function findProcesses(fragment: string): number[] {
  return readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, "latin1").replaceAll("\0", " ").includes(fragment) && isRunning(pid);
      } catch {
        return false;
      }
    });
}

/** Polls until `probe` gives a non-empty list (a forked child may not have exec'd yet). */
async function eventually<T>(probe: () => T[], timeoutMs = 3_000): Promise<T[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = probe();
    if (found.length > 0 || Date.now() > deadline) return found;
    await sleep(10);
  }
}

/** A sleep duration no other process uses, so the process can be found on the host, sandboxed or not. */
function uniqueSleep(): string {
  return `${1000 + Math.floor(Math.random() * 1000)}.${Math.floor(Math.random() * 1e6)}`;
}

const workspaces: string[] = [];
const sessions: ShellSession[] = [];

function newWorkspace(): string {
  const dir = mkdtempSync(join(tmpdir(), "veil-exec-test-"));
  workspaces.push(dir);
  return dir;
}

const realWorkspaces = new WeakMap<ShellSession, string>();

async function open(options: Partial<ShellOptions> & Pick<ShellOptions, "sandbox">): Promise<ShellSession> {
  const workspace = newWorkspace();
  const session = await openShellSession({ workspace, env: {}, ...options });
  sessions.push(session);
  realWorkspaces.set(session, realpathSync(workspace));
  return session;
}

/** HOME and cwd use the workspace's real path (tmpdir may be a symlink). */
function realWorkspace(session: ShellSession): string {
  return realWorkspaces.get(session)!;
}

afterEach(async () => {
  await Promise.all(sessions.splice(0).map((session) => session.close()));
});

afterAll(() => {
  for (const dir of workspaces) rmSync(dir, { recursive: true, force: true });
});

describe("detectSandbox", () => {
  it("answers none when off, bubblewrap where bwrap works, and unavailable with the reason for a bwrap that does not", async () => {
    expect(await detectSandbox("off")).toEqual({ kind: "none" });
    if (hasBwrap) expect(await detectSandbox("auto")).toMatchObject({ kind: "bubblewrap", bwrap: expect.stringMatching(/bwrap$/) });
    expect(await detectSandbox("required", { bwrap: "/nonexistent/bwrap" })).toEqual({ kind: "unavailable", problem: "/nonexistent/bwrap does not exist" });
    expect(await detectSandbox("required", { bwrap: "/bin/false" })).toMatchObject({ kind: "unavailable", problem: expect.stringMatching(/^\/bin\/false failed/) });
  });
});

for (const mode of modes) {
  describe.skipIf(mode.skip)(`shell session ${mode.name}`, () => {
    it("logs the time from open to the first output of echo hi", async () => {
      const started = performance.now();
      const session = await open({ sandbox: mode.sandbox });
      for await (const event of session.run("echo hi", { timeoutMs: 5_000 })) {
        if (event.type === "output") {
          console.log(`${mode.name}: open to first output ${(performance.now() - started).toFixed(1)} ms`);
          break;
        }
      }
    });

    it("keeps cwd, exports, shell variables and functions from one command to the next", async () => {
      const session = await open({ sandbox: mode.sandbox, env: { GREETING: "hello" } });
      await run(session, "mkdir -p sub/dir && cd sub/dir; export COLOR=blue; count=7; greet() { echo \"$GREETING $1\"; }");
      const { stdout, exit } = await run(session, 'pwd; echo "$COLOR $count"; greet world; bash -c \'echo child sees $COLOR\'');
      const cwd = join(realWorkspace(session), "sub/dir");
      expect(stdout).toBe(`${cwd}\nblue 7\nhello world\nchild sees blue\n`);
      expect(exit.exitCode).toBe(0);
    });

    it("exports a command's own env for that command only, never traced by set -x", async () => {
      const session = await open({ sandbox: mode.sandbox });
      const first = await run(session, 'set -x; bash -c \'echo "child $ONLY_NOW"\'', { env: { ONLY_NOW: "per-command value" } });
      expect(first.stdout).toBe("child per-command value\n");
      expect(first.stderr).not.toContain("per-command value");
      const next = await run(session, "set +x; echo \"${ONLY_NOW-unset}\"; env | grep -c ONLY_NOW || true");
      expect(next.stdout).toBe("unset\n0\n");
    });

    it("starts in workingDir and refuses one outside the workspace", async () => {
      const session = await open({ sandbox: mode.sandbox, workingDir: "repo/src" });
      expect((await run(session, "pwd")).stdout).toMatch(/\/repo\/src\n$/);
      await expect(openShellSession({ workspace: newWorkspace(), env: {}, sandbox: mode.sandbox, workingDir: "../x" })).rejects.toThrow(
        /inside the workspace/,
      );
    });

    it("returns stdout and stderr apart, interleaved writes included", async () => {
      const session = await open({ sandbox: mode.sandbox });
      const { stdout, stderr, events } = await run(session, "for i in 1 2 3; do echo out$i; echo err$i >&2; done");
      expect(stdout).toBe("out1\nout2\nout3\n");
      expect(stderr).toBe("err1\nerr2\nerr3\n");
      expect(events.at(-1)?.type).toBe("exit");
    });

    it("hands a prompt without a newline on at once, while the command still waits", async () => {
      const session = await open({ sandbox: mode.sandbox });
      const iterator = session.run("printf 'Continue? '; while [ ! -e go ]; do sleep 0.02; done; echo done", { timeoutMs: 10_000 })[Symbol.asyncIterator]();
      // Nothing more comes until the test answers: a prompt held back for more output would hang here.
      const prompt = (await iterator.next()).value as CommandEvent;
      expect(prompt.type === "output" && prompt.stream === "stdout" && Buffer.from(prompt.data).toString()).toBe("Continue? ");
      writeFileSync(join(realWorkspace(session), "go"), "");
      const rest: CommandEvent[] = [];
      for (let next = await iterator.next(); !next.done; next = await iterator.next()) rest.push(next.value);
      expect(rest.filter((e) => e.type === "output").map((e) => Buffer.from(e.data).toString()).join("")).toBe("done\n");
      expect(rest.at(-1)).toMatchObject({ type: "exit", exitCode: 0 });
    });

    it("reports exit codes, syntax errors and a duration", async () => {
      const session = await open({ sandbox: mode.sandbox });
      for (const [command, code] of [
        ["true", 0],
        ["false", 1],
        ["(exit 42)", 42],
        ["if then fi", 2],
        ["no-such-command-veil", 127],
      ] as const) {
        const { exit } = await run(session, command);
        expect({ command, code: exit.exitCode }).toEqual({ command, code });
        expect(exit).toMatchObject({ timedOut: false, truncated: false });
        expect(exit.durationMs).toBeGreaterThanOrEqual(0);
      }
    });

    it("keeps output without a trailing newline, multi-line commands, quotes and heredocs intact", async () => {
      const session = await open({ sandbox: mode.sandbox });
      expect((await run(session, "printf 'no newline'")).stdout).toBe("no newline");
      const command = [
        "name='it'\\''s'",
        "cat <<'EOF'",
        "literal $HOME and 'single' and \"double\"",
        "EOF",
        'cat <<EOF\n$name\nEOF',
        "echo \"it's\" 'a \"test\"'",
      ].join("\n");
      expect((await run(session, command)).stdout).toBe(
        "literal $HOME and 'single' and \"double\"\nit's\nit's a \"test\"\n",
      );
    });

    it("passes binary output (NUL bytes, every byte value) through intact", async () => {
      const session = await open({ sandbox: mode.sandbox });
      const { raw } = await run(session, 'for i in {0..255}; do printf "\\\\$(printf %03o "$i")"; done');
      expect(raw.stdout.equals(Buffer.from(Array.from({ length: 256 }, (_, i) => i)))).toBe(true);
    });

    it("survives `exit 3`: reports 3, and the next command keeps the cwd and exports", async () => {
      const session = await open({ sandbox: mode.sandbox });
      await run(session, "mkdir -p kept && cd kept && export KEPT=yes");
      const pid = session.pid;
      expect((await run(session, "echo bye; exit 3")).exit.exitCode).toBe(3);
      const { stdout, exit } = await run(session, 'pwd; echo "$KEPT"');
      expect(stdout).toBe(`${join(realWorkspace(session), "kept")}\nyes\n`);
      expect(exit.exitCode).toBe(0);
      expect(session.pid).not.toBe(pid);
    });

    it("carries 3 MB of random bytes exactly (marker prefixes in the data included)", async () => {
      const session = await open({ sandbox: mode.sandbox });
      const { raw } = await run(session, "head -c 3000000 /dev/urandom > random.bin; cat random.bin; cat random.bin >&2");
      const file = readFileSync(join(realWorkspace(session), "random.bin"));
      expect(raw.stdout.equals(file)).toBe(true);
      expect(raw.stderr.equals(file)).toBe(true);
    });

    it("starts each command with fresh stdout/stderr and options that cannot break the wrapper", async () => {
      const session = await open({ sandbox: mode.sandbox });
      await run(session, "exec >/dev/null 2>&1; echo hidden");
      const fresh = await run(session, "echo out; echo err >&2");
      expect([fresh.stdout, fresh.stderr]).toEqual(["out\n", "err\n"]);
      await run(session, "set -u -o pipefail");
      expect((await run(session, "echo ${UNSET_VAR_VEIL:-default}")).stdout).toBe("default\n");
      const failing = await run(session, "set -e; false; echo not-reached");
      expect(failing.stdout).toBe("");
      expect(failing.exit.exitCode).toBe(1);
      expect((await run(session, "echo recovered")).stdout).toBe("recovered\n");
    });

    it("replaces a shell that died between commands", async () => {
      const session = await open({ sandbox: mode.sandbox });
      await run(session, "mkdir -p d && cd d && export SURVIVES=1; (sleep 0.2; kill -9 $$) &");
      await sleep(500);
      const { stdout } = await run(session, 'pwd; echo "$SURVIVES"');
      expect(stdout).toBe(`${join(realWorkspace(session), "d")}\n1\n`);
    });

    it("carries every export to a replacement shell, with hundreds of them and any bytes, also when a command disabled declare", async () => {
      for (const disable of ["", "enable -n declare typeset; ", "set -o posix; "]) {
        const session = await open({ sandbox: mode.sandbox });
        // 500 exports, one array (never carried), a value that looks like more declarations; in the second
        // round the builtin the report lists them with is disabled, so it lists them name by name, and in
        // the third the shell is in POSIX mode (where `export -p` would print another format).
        await run(session, `for i in $(seq 500); do export "MANY_$i=v$i"; done; declare -a ARR=(1 2); ${disable}export LAST=$'z"\\ndeclare -x FORGED="1"\\n\\x01\\''`);
        await run(session, "(sleep 0.2; kill -9 $$) &");
        await sleep(500);
        const { stdout } = await run(session, 'printf "%q\\n" "$MANY_1 $MANY_250 $MANY_500 $LAST ${ARR-none} ${FORGED-none}"; compgen -e | grep -c "^MANY_"');
        expect({ disable, stdout }).toEqual({ disable, stdout: `${String.raw`$'v1 v250 v500 z"\ndeclare -x FORGED="1"\n\001\' none none'`}\n500\n` });
      }
    });

    it("adopt() gives a shell opened ahead its environment and directory, also when that shell died meanwhile", async () => {
      const live = await open({ sandbox: mode.sandbox });
      live.adopt({ GIVEN: "it's here" }, "a/b");
      expect(await run(live, 'pwd; echo "$GIVEN"')).toMatchObject({ stdout: `${join(realWorkspace(live), "a", "b")}\nit's here\n` });
      expect(() => live.adopt({}, ".")).toThrow(/no command/);
      const dead = await open({ sandbox: mode.sandbox });
      process.kill(dead.pid!, "SIGKILL");
      await eventually(() => (dead.pid === undefined ? [1] : []));
      // The replacement shell starts with what was adopted, as a shell opened with it would.
      dead.adopt({ GIVEN: "after a death" }, "c");
      expect((await run(dead, 'pwd; echo "$GIVEN"')).stdout).toBe(`${join(realWorkspace(dead), "c")}\nafter a death\n`);
      const outside = await open({ sandbox: mode.sandbox });
      expect(() => outside.adopt({}, "../..")).toThrow(/workingDir must stay inside the workspace/);
      expect(() => outside.adopt({ "BAD-NAME": "x" }, ".")).toThrow(/must match/);
    });

    it("times out: kills the command and its background child, then keeps working", async () => {
      const session = await open({ sandbox: mode.sandbox });
      await run(session, "export AFTER=still-here");
      const child = uniqueSleep();
      let childPids: number[] = [];
      const events: CommandEvent[] = [];
      for await (const event of session.run(`sleep ${child} & echo started; sleep 100`, { timeoutMs: 1_000 })) {
        events.push(event);
        if (event.type === "output") childPids = await eventually(() => findProcesses(child));
      }
      expect(childPids).toHaveLength(1);
      expect(events.at(-1)).toMatchObject({ type: "exit", exitCode: EXIT_CODE_TIMED_OUT, timedOut: true, truncated: false });
      expect(findProcesses(child)).toEqual([]);
      expect(isRunning(childPids[0]!)).toBe(false);
      expect((await run(session, 'echo "$AFTER"')).stdout).toBe("still-here\n");
    });

    it("close() kills background processes, also ones that called setsid", async () => {
      const session = await open({ sandbox: mode.sandbox });
      const [plain, detached] = [uniqueSleep(), uniqueSleep()];
      await run(session, `sleep ${plain} & setsid sleep ${detached} & echo ok`);
      const pids = [...(await eventually(() => findProcesses(plain))), ...(await eventually(() => findProcesses(detached)))];
      expect(pids).toHaveLength(2);
      const shellPid = session.pid!;
      await session.close();
      for (const pid of [...pids, shellPid]) expect(isRunning(pid)).toBe(false);
      expect(session.pid).toBeUndefined();
      await expect(run(session, "true")).rejects.toThrow(/closed/);
    });

    it("close() during a command ends it with EXIT_CODE_KILLED", async () => {
      const session = await open({ sandbox: mode.sandbox });
      const result = run(session, "echo started; sleep 100");
      await sleep(200);
      await session.close();
      const { stdout, exit } = await result;
      expect(stdout).toBe("started\n");
      expect(exit).toMatchObject({ exitCode: EXIT_CODE_KILLED, timedOut: false });
    });

    it("gives commands only the base environment and the given env, never the server's", async () => {
      const session = await open({ sandbox: mode.sandbox, env: { CONV_VAR: "plain", API_TOKEN: "tok-9f8e7d6c" } });
      const { stdout } = await run(session, "env");
      expect(stdout).not.toContain("canary-master-key");
      const names = stdout.trim().split("\n").map((line) => line.slice(0, line.indexOf("=")));
      const bashOwn = ["PWD", "SHLVL", "_", "OLDPWD"];
      expect(names.filter((name) => !bashOwn.includes(name)).sort()).toEqual(
        ["API_TOKEN", "CONV_VAR", "HOME", "LANG", "PATH", "TERM"].sort(),
      );
      expect(stdout).toContain(`HOME=${realWorkspace(session)}\n`);
    });

    it("never puts secrets on a command line: they are in the environment only", async () => {
      const secret = "sk-live-0123456789abcdef";
      const session = await open({ sandbox: mode.sandbox, env: { API_TOKEN: secret } });
      const nap = uniqueSleep();
      const iterator = session.run(`echo "\${#API_TOKEN}"; sleep ${nap}`, { timeoutMs: 10_000 })[Symbol.asyncIterator]();
      await iterator.next();
      await eventually(() => findProcesses(nap));
      const tree = processTree(session.pid!);
      const cmdlines = tree.map((info) => readOrEmpty(`/proc/${info.pid}/cmdline`));
      expect(cmdlines.some((text) => text.includes(nap))).toBe(true);
      for (const text of cmdlines) expect(text).not.toContain(secret);
      expect(tree.some((info) => readOrEmpty(`/proc/${info.pid}/environ`).includes(`API_TOKEN=${secret}`))).toBe(true);
      await iterator.return?.();
    });

    it("bounds memory for a chatty command and a slow consumer, then cuts it", async () => {
      const bufferBytes = 1024 * 1024;
      const session = await open({ sandbox: mode.sandbox, outputBufferBytes: bufferBytes });
      const rssBefore = process.memoryUsage().rss;
      const iterator = session.run("cat /dev/zero", { timeoutMs: 20_000 })[Symbol.asyncIterator]();
      await iterator.next();
      let maxQueued = 0;
      for (let i = 0; i < 6; i++) {
        await sleep(100);
        maxQueued = Math.max(maxQueued, session.queuedBytes);
      }
      for (let i = 0; i < 200; i++) await iterator.next();
      const rssGrowth = process.memoryUsage().rss - rssBefore;
      console.log(`${mode.name}: max queued ${maxQueued} bytes, rss growth ${(rssGrowth / 2 ** 20).toFixed(1)} MiB`);
      expect(maxQueued).toBeGreaterThan(bufferBytes / 2);
      expect(maxQueued).toBeLessThanOrEqual(bufferBytes + 128 * 1024);
      expect(rssGrowth).toBeLessThan(200 * 2 ** 20);
      session.cutCurrent();
      const rest: CommandEvent[] = [];
      for (let next = await iterator.next(); !next.done; next = await iterator.next()) rest.push(next.value);
      expect(rest).toEqual([expect.objectContaining({ type: "exit", exitCode: EXIT_CODE_KILLED, truncated: true, timedOut: false })]);
      expect((await run(session, "echo alive")).stdout).toBe("alive\n");
    });

    it("cuts at outputLimitBytes on raw bytes and says truncated", async () => {
      const session = await open({ sandbox: mode.sandbox });
      const { stdout, exit } = await run(session, "yes", { outputLimitBytes: 1000 });
      expect(stdout).toBe("y\n".repeat(500));
      expect(exit).toMatchObject({ exitCode: EXIT_CODE_KILLED, truncated: true, timedOut: false });
      const small = await run(session, "printf 12345", { outputLimitBytes: 5 });
      expect(small.stdout).toBe("12345");
      expect(small.exit.truncated).toBe(false);
    });

    it("abort signal kills the command now; leaving the loop early does too", async () => {
      const session = await open({ sandbox: mode.sandbox });
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 200);
      const aborted = await run(session, "echo before; sleep 100", { signal: controller.signal });
      expect(aborted.stdout).toBe("before\n");
      expect(aborted.exit).toMatchObject({ exitCode: EXIT_CODE_KILLED, timedOut: false, truncated: false });
      expect(aborted.exit.durationMs).toBeLessThan(5_000);

      const marker = uniqueSleep();
      for await (const event of session.run(`echo go; sleep ${marker}`, { timeoutMs: 10_000 })) {
        if (event.type === "output") break;
      }
      expect(findProcesses(marker)).toEqual([]);
      expect((await run(session, "echo next")).stdout).toBe("next\n");
    });

    it("runs commands one at a time, in the order iteration started", async () => {
      const session = await open({ sandbox: mode.sandbox });
      const order: string[] = [];
      await Promise.all(
        ["sleep 0.2; echo first", "echo second"].map(async (command) => {
          order.push((await run(session, command)).stdout.trim());
        }),
      );
      expect(order).toEqual(["first", "second"]);
    });

    it("refuses a command with a NUL byte", async () => {
      const session = await open({ sandbox: mode.sandbox });
      await expect(run(session, "echo a\0b")).rejects.toThrow(/NUL/);
      expect((await run(session, "echo ok")).stdout).toBe("ok\n");
    });
  });
}

describe.skipIf(!hasBwrap)(hasBwrap ? "bubblewrap isolation" : "bubblewrap isolation (bubblewrap not installed)", () => {
  let server: Server;
  let port = 0;
  beforeAll(async () => {
    server = createServer((socket) => socket.end("pong\n"));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it("keeps the system read-only and the workspace and a private /tmp writable", async () => {
    const hostFile = join(tmpdir(), `veil-host-only-${process.pid}`);
    writeFileSync(hostFile, "host");
    try {
      const session = await open({ sandbox: bwrap });
      const { stdout } = await run(
        session,
        [
          "touch /usr/veil-test 2>/dev/null && echo usr-writable || echo usr-ro",
          "touch /veil-test 2>/dev/null && echo root-writable || echo root-ro",
          "echo data > file && cat file",
          `test -e ${hostFile} && echo host-tmp-visible || echo host-tmp-hidden`,
          "echo inside > /tmp/veil-sandbox-only && echo tmp-writable",
          "cat /etc/shadow 2>/dev/null | wc -c",
        ].join("\n"),
      );
      expect(stdout).toBe("usr-ro\nroot-ro\ndata\nhost-tmp-hidden\ntmp-writable\n0\n");
      expect(readdirSync(tmpdir())).not.toContain("veil-sandbox-only");
      expect(readFileSync(join(realWorkspace(session), "file"), "utf8")).toBe("data\n");
    } finally {
      rmSync(hostFile, { force: true });
    }
  });

  it("has no network unless asked, then reaches the host", async () => {
    const probe = `cat < /dev/tcp/127.0.0.1/${port} 2>/dev/null || echo unreachable`;
    const offline = await open({ sandbox: bwrap });
    expect((await run(offline, probe)).stdout).toBe("unreachable\n");
    const online = await open({ sandbox: bwrap, network: true });
    expect((await run(online, probe)).stdout).toBe("pong\n");
  });

  it("shows only the sandbox's own processes", async () => {
    const session = await open({ sandbox: bwrap });
    const { stdout } = await run(session, "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done");
    const lines = stdout.split("\n").filter(Boolean);
    expect(lines.length).toBeLessThan(8);
    expect(stdout).not.toMatch(/node|vitest/);
  });

  it("close() catches double-forked daemons through the PID namespace", async () => {
    const session = await open({ sandbox: bwrap });
    const daemon = uniqueSleep();
    await run(session, `(setsid sleep ${daemon} &) ; echo ok`);
    const pids = await eventually(() => findProcesses(daemon));
    expect(pids).toHaveLength(1);
    await session.close();
    expect(isRunning(pids[0]!)).toBe(false);
  });
});

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, "latin1");
  } catch {
    return "";
  }
}
