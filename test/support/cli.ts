// Runs the `veil` CLI as a user would, against a test server, with nothing of the test's environment but PATH.
import { spawnSync } from "node:child_process";
import { VEIL_BIN } from "./child-server.js";

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
