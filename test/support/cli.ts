// Runs the `veil` CLI as a user would, against a test server, with nothing of the test's environment but PATH.
import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, expect } from "vitest";
import { type ChildServer, spawnServer, VEIL_BIN } from "./child-server.js";
import { tempDir } from "./temp-dir.js";

/** What a `veil` run gave back. */
export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A `veil(args, stdin?, env?)` bound to one server; VEIL_DATA_DIR lets it find the admin token file. */
export function cliFor(target: () => { url: string; dataDir: string }) {
  return (args: string[], input?: string, env: Record<string, string> = {}): CliResult => {
    const { url, dataDir } = target();
    const res = spawnSync(process.execPath, [VEIL_BIN, ...args], {
      input,
      encoding: "utf8",
      env: { PATH: process.env.PATH ?? "", VEIL_URL: url, VEIL_DATA_DIR: dataDir, ...env },
    });
    return { code: res.status, stdout: res.stdout, stderr: res.stderr };
  };
}

/**
 * Inside a describe: a child server on a temp data dir for the block, and `veil` bound to it.
 * After the block the server must stop cleanly and its log must not hold `canary`.
 */
export function useCliServer(canary: string) {
  const dir = tempDir();
  let child: ChildServer | undefined;
  beforeAll(async () => {
    child = await spawnServer(dir.path);
  });
  afterAll(async () => {
    expect(await child!.stop()).toBe(0);
    expect(child!.stderr()).not.toContain(canary);
    dir.cleanup();
  });
  return {
    dir,
    /** The running server (only inside tests and hooks). */
    server: () => child!,
    veil: cliFor(() => ({ url: child!.url, dataDir: dir.path })),
  };
}
