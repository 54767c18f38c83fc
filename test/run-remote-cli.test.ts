// `veil run` on the server as a user runs it: piped stdin reaches the command, signals are forwarded, --env-file values travel.
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { detectSandbox } from "../server/domain/executor.js";
import { VEIL_BIN } from "./support/child-server.js";
import { useCliServer } from "./support/cli.js";
import { tempDir } from "./support/temp-dir.js";

const CANARY = "canary-REMOTE-9b4de2f1";
const hasBwrap = (await detectSandbox("required")).kind === "bubblewrap";

describe.skipIf(!hasBwrap)(`veil run on the server: stdin, signals, env files${hasBwrap ? "" : " (skipped: bubblewrap is not usable here)"}`, () => {
  const { veil, server, dir } = useCliServer(CANARY);
  const work = tempDir("veil-remote-");

  /** Starts `veil run ...` with stdin from /dev/null, waits for `ready` on stdout, sends `signal`, and resolves to code and output. */
  async function signalled(args: string[], signal: NodeJS.Signals): Promise<{ code: number | null; stdout: string }> {
    const proc = spawn(process.execPath, [VEIL_BIN, "run", ...args], {
      env: { PATH: process.env.PATH ?? "", VEIL_URL: server().url, VEIL_DATA_DIR: dir.path },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    const exit = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
    await new Promise<void>((resolve) =>
      proc.stdout.on("data", (d: Buffer) => {
        stdout += d.toString();
        if (stdout.includes("ready\n")) resolve();
      }),
    );
    proc.kill(signal);
    return { code: await exit, stdout };
  }

  it("piped stdin reaches the command until its end, masked on the way back; --no-stdin sends none", () => {
    expect(veil(["secret", "set", "KEY"], CANARY).code).toBe(0);
    expect(veil(["run", "--", "head", "-c", "5"], "hello world\n")).toMatchObject({ code: 0, stdout: "hello" });
    const counted = veil(["run", "--secret", "KEY", "--", "wc -l; cat; echo $KEY"], `a\nb\n${CANARY}\n`);
    expect(counted).toMatchObject({ code: 0, stdout: "3\n<secret-hidden>\n" });
    expect(veil(["run", "--no-stdin", "--", "cat; echo rc=$?"], "not for the command\n")).toMatchObject({ code: 0, stdout: "rc=0\n" });
    const big = "x".repeat(300 * 1024);
    expect(veil(["run", "--", "wc -c"], big)).toMatchObject({ code: 0, stdout: `${big.length}\n` });
    expect(veil(["run", "--stdin", "--no-stdin", "--", "true"])).toMatchObject({ code: 2, stderr: expect.stringMatching(/choose one/) });
  }, 180_000);

  it("forwards SIGINT and SIGTERM to the running command: a trap runs; one that dies of SIGINT exits 130", async () => {
    const trapped = await signalled(["--", 'trap "echo got-int; exit 5" INT; echo ready; while :; do sleep 0.1; done'], "SIGINT");
    expect(trapped).toEqual({ code: 5, stdout: "ready\ngot-int\n" });
    expect(await signalled(["--", "sh -c 'echo ready; exec sleep 30'"], "SIGINT")).toMatchObject({ code: 130 });
    const term = await signalled(["--no-stdin", "--", 'trap "echo got-term; exit 6" TERM; echo ready; while :; do sleep 0.1; done'], "SIGTERM");
    expect(term).toEqual({ code: 6, stdout: "ready\ngot-term\n" });
  });

  it("--env-file references and expressions are resolved by the server, masked in output", () => {
    expect(veil(["secret", "set", "DB", "--fields"], `user=appuser\npassword=${CANARY}-pw\n`).code).toBe(0);
    const envFile = join(work.path, "refs.env");
    writeFileSync(envFile, `TOKEN=veil://KEY\nDSN="postgres://{{ secrets.DB.user }}:{{ secrets.DB.password }}@db/app"\n`);
    const res = veil(["run", "--env-file", envFile, "--", 'echo "$TOKEN $DSN"; echo "${#TOKEN}"']);
    expect(res.stderr).toBe("");
    expect(res).toMatchObject({ code: 0, stdout: `<secret-hidden> postgres://<secret-hidden>:<secret-hidden>@db/app\n${CANARY.length}\n` });
  });

  it("--env-file values (quotes, export, comments) travel as env, --env over them; a bad line fails before connecting, naming file:line", () => {
    const envFile = join(work.path, "app.env");
    writeFileSync(envFile, `# app\nexport MODE=production\nGREETING="hello\\tworld"\nRAW='$NOT_EXPANDED'\nEMPTY=\n`);
    const res = veil(["run", "--env-file", envFile, "--env", "MODE=override", "--", 'printf "%s|%s|%s|[%s]\\n" "$MODE" "$GREETING" "$RAW" "$EMPTY"']);
    expect(res).toMatchObject({ code: 0, stdout: "override|hello\tworld|$NOT_EXPANDED|[]\n" });
    writeFileSync(envFile, "OK=1\nBROKEN\n");
    expect(veil(["run", "--env-file", envFile, "--", "true"], undefined, { VEIL_URL: "http://127.0.0.1:9" })).toMatchObject({
      code: 2,
      stderr: `veil run: ${envFile}:2: expected '=' after BROKEN\n`,
    });
  });
});
