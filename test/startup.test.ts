// Start-up and shutdown edges as an operator meets them: a busy port, a busy data dir, npm start and SIGTERM, a drain mid-command.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { createApp } from "../server/app.js";
import { parseServerConfig } from "../server/config.js";
import { createLogger } from "../server/log.js";
import { openLevelStore } from "../server/store/level-store.js";
import { TEST_MASTER_KEY } from "./support/app.js";
import { spawnServer, VEIL_BIN } from "./support/child-server.js";
import { cliFor } from "./support/cli.js";
import { tempDir } from "./support/temp-dir.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const ENV = { PATH: process.env.PATH ?? "", VEIL_MASTER_KEY: TEST_MASTER_KEY };

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(check: () => boolean, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) if (check()) return true;
  return check();
}

describe("start-up", () => {
  it("a start on a busy port exits 2 and leaves no data dir and no operator token behind", async () => {
    const busy: Server = createServer();
    await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve));
    const port = (busy.address() as { port: number }).port;
    const dir = tempDir();
    try {
      const dataDir = join(dir.path, "fresh");
      const res = spawnSync(process.execPath, [VEIL_BIN, "serve", "--port", String(port), "--data-dir", dataDir], { encoding: "utf8", env: ENV });
      expect(res.status).toBe(2);
      expect(res.stderr).toContain("the port is already in use");
      expect(res.stdout).not.toContain("Operator token");
      expect(existsSync(dataDir)).toBe(false);
    } finally {
      busy.close();
      dir.cleanup();
    }
  });

  it("a second server on the same data dir is told which pid holds it; a stale pid file is ignored", async () => {
    const dir = tempDir();
    try {
      const first = await spawnServer(dir.path);
      expect(readFileSync(join(dir.path, "veil.pid"), "utf8").trim()).toBe(String(first.proc.pid));
      await expect(spawnServer(dir.path)).rejects.toThrow(`data dir ${dir.path} in use by pid ${first.proc.pid}`);
      expect(await first.stop()).toBe(0);
      expect(existsSync(join(dir.path, "veil.pid"))).toBe(false);
      // A crash leaves the pid file; LevelDB's lock went with the process, so the next start just works.
      writeFileSync(join(dir.path, "veil.pid"), "999999\n");
      const again = await spawnServer(dir.path);
      expect(readFileSync(join(dir.path, "veil.pid"), "utf8").trim()).toBe(String(again.proc.pid));
      const code = await again.stop();
      expect(again.stderr()).toContain('"msg":"stopped"');
      expect(code).toBe(0);
    } finally {
      dir.cleanup();
    }
  });

  it("records the store layout once, and refuses a data dir written by a newer layout", async () => {
    const dir = tempDir();
    const config = parseServerConfig(["--data-dir", dir.path, "--port", "0"], ENV);
    const start = () => createApp(config, { logger: createLogger(() => {}), env: ENV });
    try {
      await (await start()).close();
      let store = await openLevelStore(join(dir.path, "db"));
      expect(Buffer.from((await store.get("sys\0layout"))!).toString()).toBe("2");
      // A store from before layouts were recorded is layout 1: migrated (nothing to move here) and marked at start.
      await store.write([{ type: "del", key: "sys\0layout" }]);
      await store.close();
      await (await start()).close();
      store = await openLevelStore(join(dir.path, "db"));
      expect(Buffer.from((await store.get("sys\0layout"))!).toString()).toBe("2");
      await store.write([{ type: "put", key: "sys\0layout", value: Buffer.from("3") }]);
      await store.close();
      await expect(start()).rejects.toThrow("this data dir was written by a newer Veil (layout 3); this server understands up to 2");
    } finally {
      dir.cleanup();
    }
  });
});

describe("shutdown", () => {
  it("npm start passes SIGTERM to the server: it drains and no node process is left", async () => {
    const dir = tempDir();
    const npm = spawn("npm", ["start", "--silent"], { cwd: ROOT, env: { ...ENV, VEIL_PORT: "0", VEIL_DATA_DIR: dir.path }, stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    npm.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => npm.once("exit", (code) => resolve(code)));
    try {
      expect(await waitFor(() => err.includes('"msg":"listening"'), 30_000)).toBe(true);
      const serverPid = Number(readFileSync(join(dir.path, "veil.pid"), "utf8"));
      npm.kill("SIGTERM");
      await exited;
      expect(err).toContain('"msg":"stopped"');
      expect(await waitFor(() => !alive(serverPid), 5_000)).toBe(true);
    } finally {
      npm.kill("SIGKILL");
      dir.cleanup();
    }
  });

  it("an in-flight veil run hears that the server is shutting down", async () => {
    const dir = tempDir();
    const server = await spawnServer(dir.path);
    try {
      const veil = cliFor(() => ({ url: server.url, dataDir: dir.path }));
      expect(veil(["run", "--", "true"]).code).toBe(0);
      const run = spawn(process.execPath, [VEIL_BIN, "run", "--", "echo started; sleep 60"], {
        env: { ...ENV, VEIL_URL: server.url, VEIL_DATA_DIR: dir.path },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let out = "";
      let err = "";
      run.stdout.on("data", (d: Buffer) => (out += d.toString()));
      run.stderr.on("data", (d: Buffer) => (err += d.toString()));
      const code = new Promise<number | null>((resolve) => run.once("exit", (c) => resolve(c)));
      expect(await waitFor(() => out.includes("started"), 30_000)).toBe(true);
      expect(await server.stop()).toBe(0);
      expect(await code).toBe(125);
      expect(err).toContain("veil run: UNAVAILABLE: server shutting down: the command was stopped before it finished");
    } finally {
      await server.stop();
      dir.cleanup();
    }
  });
});
