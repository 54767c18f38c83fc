// The egress network mode as a command meets it: only 127.0.0.1:3128 leads out (to whatever the server attached), trust files and proxy env are set, nothing else reaches the network.
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server as HttpServer } from "node:http";
import type { Server, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { DYNAMIC_UID_BASE, DynamicUsers, isRoot, type RunAs } from "../server/domain/executor/dynamic-user.js";
import { receiveListener } from "../server/domain/executor/egress-listener.js";
import { type CommandEvent, detectSandbox, EgressNeedsSandboxError, type EgressOptions, openShellSession, type ShellSession } from "../server/domain/executor.js";
import { pidsWith } from "./support/processes.js";

const detected = await detectSandbox("required");
const hasBwrap = detected.kind === "bubblewrap";
const has = (tool: string) => spawnSync("sh", ["-c", `command -v ${tool}`]).status === 0;
const MiB = 1024 * 1024;

/** A stand-in for the gateway: plain HTTP on every attached listener, answering what it was asked. */
class StandIn {
  readonly attached: Server[] = [];
  live = 0;
  private readonly http: HttpServer = createServer((req, res) => res.end(`stand-in ${req.method} ${req.url}\n`));

  readonly options = (files: EgressOptions["files"]): EgressOptions => ({
    files,
    attach: (listener) => {
      this.attached.push(listener);
      this.live++;
      const onConnection = (socket: Socket) => this.http.emit("connection", socket);
      listener.on("connection", onConnection);
      return () => {
        this.live--;
        listener.off("connection", onConnection);
      };
    },
  });
}

async function run(session: ShellSession, command: string, timeoutMs = 15_000): Promise<{ out: string; exit: Extract<CommandEvent, { type: "exit" }> }> {
  let out = "";
  let exit: Extract<CommandEvent, { type: "exit" }> | undefined;
  for await (const event of session.run(command, { timeoutMs })) {
    if (event.type === "output") out += Buffer.from(event.data).toString();
    else exit = event;
  }
  return { out, exit: exit! };
}


describe.skipIf(!hasBwrap)(hasBwrap ? "egress network mode in bubblewrap" : "egress network mode in bubblewrap (bubblewrap is not usable here)", () => {
  const dir = mkdtempSync(join(tmpdir(), "veil-egress-"));
  const files = { bundle: join(dir, "trust", "egress-ca-bundle.pem"), caCert: join(dir, "trust", "egress-ca.pem") };
  const users = isRoot() && detected.kind === "bubblewrap" && detected.asUser ? new DynamicUsers() : undefined;
  let user: RunAs | undefined;
  const standIn = new StandIn();
  let session: ShellSession;

  beforeAll(async () => {
    // Like the work dir: the conversation's uid may pass through to its workspace and the trust files, not list them.
    chmodSync(dir, 0o711);
    mkdirSync(join(dir, "trust"), { mode: 0o755 });
    writeFileSync(files.bundle, "-----BEGIN CERTIFICATE-----\nbundle-stand-in\n-----END CERTIFICATE-----\n", { mode: 0o644 });
    writeFileSync(files.caCert, "-----BEGIN CERTIFICATE-----\nca-stand-in\n-----END CERTIFICATE-----\n", { mode: 0o644 });
    const workspace = join(dir, "ws");
    mkdirSync(workspace, { mode: 0o700 });
    user = users?.allocate();
    if (user !== undefined) chownSync(workspace, user.uid, user.gid);
    const started = performance.now();
    session = await openShellSession({
      workspace,
      env: { NO_PROXY: "caller-set.example", HTTPS_PROXY: "http://caller.example:1" },
      sandbox: detected as Extract<typeof detected, { kind: "bubblewrap" }>,
      network: "egress",
      egress: standIn.options(files),
      ...(user !== undefined ? { user } : {}),
      // The flag's minimum: the helper (bash, bwrap, node's threads) has to fit in it.
      limits: { maxProcesses: 8, memoryBytes: 256 * MiB, diskBytes: 64 * MiB, fileSizeBytes: 64 * MiB },
    });
    const startMs = performance.now() - started;
    // The same shell without egress, for the ratio: the difference is the node helper.
    const plainWorkspace = join(dir, "ws-plain");
    mkdirSync(plainWorkspace, { mode: 0o777 });
    const plainStarted = performance.now();
    const plain = await openShellSession({ workspace: plainWorkspace, env: {}, sandbox: detected as Extract<typeof detected, { kind: "bubblewrap" }> });
    const plainMs = performance.now() - plainStarted;
    await plain.close();
    console.log(`shell start in bwrap: egress ${startMs.toFixed(0)} ms (bwrap + node helper + prologue), none ${plainMs.toFixed(0)} ms`);
  });
  afterAll(async () => {
    await session?.close();
    if (user !== undefined) users?.release(user);
    rmSync(dir, { recursive: true, force: true });
  });

  it("reaches the attached listener at 127.0.0.1:3128, directly and through HTTP_PROXY (loopback too: no NO_PROXY)", async () => {
    expect(standIn.attached).toHaveLength(1);
    const { out } = await run(session, "curl --noproxy '*' -sS http://127.0.0.1:3128/direct; curl -sS http://api.example.test/via-proxy");
    expect(out).toBe("stand-in GET /direct\nstand-in GET http://api.example.test/via-proxy\n");
    expect((await run(session, "curl -sS http://127.0.0.1:3128/proxied")).out).toBe("stand-in GET http://127.0.0.1:3128/proxied\n");
  });

  it("sets the proxy and trust env (Veil's values win, no NO_PROXY) and shows the trust files under /run/veil", async () => {
    const { out } = await run(session, "env | grep -E '^(HTTPS?_PROXY|https?_proxy|SSL_CERT_FILE|CURL_CA_BUNDLE|REQUESTS_CA_BUNDLE|GIT_SSL_CAINFO|NODE_EXTRA_CA_CERTS)=' | sort");
    expect(out.trim().split("\n")).toEqual([
      "CURL_CA_BUNDLE=/run/veil/ca-bundle.pem",
      "GIT_SSL_CAINFO=/run/veil/ca-bundle.pem",
      "HTTPS_PROXY=http://127.0.0.1:3128",
      "HTTP_PROXY=http://127.0.0.1:3128",
      "NODE_EXTRA_CA_CERTS=/run/veil/egress-ca.pem",
      "REQUESTS_CA_BUNDLE=/run/veil/ca-bundle.pem",
      "SSL_CERT_FILE=/run/veil/ca-bundle.pem",
      "http_proxy=http://127.0.0.1:3128",
      "https_proxy=http://127.0.0.1:3128",
    ]);
    // The caller's NO_PROXY is passed on (its hosts then simply get no network); Veil adds none.
    expect((await run(session, "echo ${NO_PROXY-unset} ${no_proxy-unset}")).out).toBe("caller-set.example unset\n");
    const files = await run(session, "cat /run/veil/ca-bundle.pem /run/veil/egress-ca.pem; { echo x > /run/veil/egress-ca.pem; } 2>/dev/null || echo read-only");
    expect(files.out).toContain("bundle-stand-in");
    expect(files.out).toContain("ca-stand-in");
    expect(files.out).toMatch(/read-only\n$/);
  });

  it("leaves the command no IPC channel: fd 6 closed, NODE_CHANNEL_* unset", async () => {
    const { out } = await run(session, 'ls /proc/self/fd | tr "\\n" " "; echo; ls /proc/$$/fd | tr "\\n" " "; echo; echo ${NODE_CHANNEL_FD-unset} ${NODE_CHANNEL_SERIALIZATION_MODE-unset}');
    const [command, shell, channel] = out.trim().split("\n");
    expect(command!.trim().split(" ")).not.toContain("6");
    expect(shell!.trim().split(" ")).not.toContain("6");
    expect(channel).toBe("unset unset");
  });

  it.skipIf(!has("curl"))("gives a tool that ignores the proxy no network, at once", async () => {
    const started = performance.now();
    const { out } = await run(session, "curl --noproxy '*' -sS --max-time 5 http://1.1.1.1/ 2>/dev/null; echo curl=$?; getent hosts example.com; echo getent=$?; ip -o link 2>/dev/null | wc -l");
    const elapsed = performance.now() - started;
    expect(out).toMatch(/^curl=7\ngetent=2\n/);
    expect(elapsed).toBeLessThan(3_000);
    if (has("python3")) {
      const py = await run(session, `python3 -c "import socket; socket.create_connection(('1.1.1.1', 443), timeout=3)" 2>&1 | tail -1`);
      expect(py.out).toMatch(/OSError|Network is unreachable/);
    }
  });

  it("runs as the conversation's own uid (1000 inside, the dynamic uid on the host), never root", async () => {
    const nap = `${900 + Math.floor(Math.random() * 99)}.${Math.floor(Math.random() * 1e6)}`;
    const { out } = await run(session, `id -u; sleep ${nap} & echo started`);
    expect(out).toBe("1000\nstarted\n");
    if (user !== undefined) {
      // The background job may still be a forked bash that has not exec'd sleep yet.
      await expect.poll(() => pidsWith(`sleep ${nap}`).length).toBe(1);
      const [pid] = pidsWith(`sleep ${nap}`);
      expect(statSync(`/proc/${pid}`).uid).toBe(user.uid);
      expect(user.uid).toBeGreaterThanOrEqual(DYNAMIC_UID_BASE);
    }
  });

  it("attaches a new listener to a replacement shell after a timeout, and detaches and closes the old one", async () => {
    const before = standIn.attached.length;
    const timedOut = await run(session, "sleep 30", 500);
    expect(timedOut.exit.timedOut).toBe(true);
    const started = performance.now();
    const { out } = await run(session, "curl --noproxy '*' -sS http://127.0.0.1:3128/again");
    console.log(`egress replacement shell + curl: ${(performance.now() - started).toFixed(0)} ms`);
    expect(out).toBe("stand-in GET /again\n");
    expect(standIn.attached).toHaveLength(before + 1);
    expect(standIn.live).toBe(1);
    expect(standIn.attached[before - 1]!.listening).toBe(false);
    expect(standIn.attached[before]!.listening).toBe(true);
  });

  it("detaches and closes the listener when the session closes", async () => {
    await session.close();
    expect(standIn.live).toBe(0);
    expect(standIn.attached.every((listener) => !listener.listening)).toBe(true);
  });

  it("fails the start, with bwrap's reason, when a trust file is missing: no network rather than a wrong one", async () => {
    const workspace = join(dir, "ws-missing");
    mkdirSync(workspace, { mode: 0o777 });
    const missing = { bundle: join(dir, "trust", "nonexistent.pem"), caCert: files.caCert };
    const opening = openShellSession({ workspace, env: {}, sandbox: detected as Extract<typeof detected, { kind: "bubblewrap" }>, network: "egress", egress: standIn.options(missing) });
    await expect(opening).rejects.toThrow(/shell exited during start-up .*nonexistent\.pem/);
  });
});

describe("egress network mode without the sandbox", () => {
  it("refuses to start: no network namespace, so it could not fail closed", async () => {
    const workspace = mkdtempSync(join(tmpdir(), "veil-egress-off-"));
    try {
      const egress: EgressOptions = { files: { bundle: "/nonexistent", caCert: "/nonexistent" }, attach: () => () => {} };
      const opening = openShellSession({ workspace, env: {}, sandbox: { kind: "none" }, network: "egress", egress });
      await expect(opening).rejects.toBeInstanceOf(EgressNeedsSandboxError);
      await expect(opening).rejects.toThrow(/needs the bubblewrap sandbox/);
    } finally {
      rmSync(workspace, { recursive: true, force: true });
    }
  });
});

describe("receiveListener", () => {
  /** A node child with an IPC channel running `code`; the listener it sends (or the rejection). */
  function fromChild(code: string): Promise<Server> {
    const child = spawn(process.execPath, ["-e", code], { stdio: ["ignore", "ignore", "inherit", "ipc"] });
    const { listener } = receiveListener(child);
    return listener.finally(() => child.kill());
  }

  it("accepts a veil-egress message carrying a server on 127.0.0.1:3128, and nothing else", async () => {
    await expect(fromChild(`process.send("hello")`)).rejects.toThrow("egress listener: the helper sent an unexpected message");
    await expect(fromChild(`process.send("veil-egress")`)).rejects.toThrow("egress listener: the helper's message carried no listening socket");
    const wrongPort = `const s=require("net").createServer();s.listen({host:"127.0.0.1",port:0},()=>process.send("veil-egress",s))`;
    await expect(fromChild(wrongPort)).rejects.toThrow(/egress listener: the socket listens on 127\.0\.0\.1:\d+, not 127\.0\.0\.1:3128/);
  });

  it("reports a second message (the start then fails) and closes its handle", async () => {
    const code = `const n=require("net");const a=n.createServer(),b=n.createServer();a.listen({host:"127.0.0.1",port:3128},()=>process.send("veil-egress",a,()=>b.listen(0,()=>process.send("veil-egress",b))))`;
    const child = spawn(process.execPath, ["-e", code], { stdio: ["ignore", "ignore", "inherit", "ipc"] });
    const receiving = receiveListener(child);
    const first = await receiving.listener;
    await new Promise((resolve) => child.on("message", resolve));
    expect(receiving.extra()).toBe("egress listener: the helper sent more than one message");
    first.close();
    child.kill();
  });
});

afterEach(() => {
  // Every shell of the suite is checked for a leaked helper: none may outlive its start.
  expect(pidsWith("/run/veil/node --v8-pool-size")).toEqual([]);
});
