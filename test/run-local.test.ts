// `veil run --local` as a user runs it on a real terminal: env files, stdin, TTY, signals, exit codes, masking, the read rule.
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { useCliServer } from "./support/cli.js";
import { ptyMissing, veilOnPty } from "./support/pty.js";
import { tempDir } from "./support/temp-dir.js";

const CANARY = "canary-LOCAL-5d1f09aa";
const noPty = ptyMissing();

describe("veil run --local", () => {
  const { veil, server, dir } = useCliServer(CANARY);
  const work = tempDir("veil-local-");
  const target = () => ({ url: server().url, dataDir: dir.path });
  const pty = (args: string[], env: Record<string, string> = {}) => veilOnPty(["run", "--local", ...args], target(), env, work.path);

  it("runs here, in the current directory, with the caller's environment, env-file references resolved and output masked", () => {
    expect(veil(["secret", "set", "API_KEY"], CANARY).code).toBe(0);
    expect(veil(["secret", "set", "DB", "--fields"], `user=app\npassword=${CANARY}-pw\n`).code).toBe(0);
    const envFile = join(work.path, ".env");
    writeFileSync(envFile, `# for the app\nexport KEY=veil://API_KEY\nDSN="postgres://{{ secrets.DB.user }}:{{ secrets.DB.password }}@db/app"\nPLAIN='as $written'\n`);
    const res = veil(["run", "--local", "--env-file", envFile, "--", "sh", "-c", 'echo "$KEY|$DSN|$PLAIN|$FROM_CALLER|$(pwd)"; echo "err $KEY" >&2; exit 3'], undefined, {
      FROM_CALLER: "kept",
    });
    expect(res.stdout).toBe(`<secret-hidden>|postgres://app:<secret-hidden>@db/app|as $written|kept|${process.cwd()}\n`);
    // DB's user (app) is too short to mask: said once, by name.
    expect(res.stderr).toBe("veil run: too short to mask, shown as is: DB\nerr <secret-hidden>\n");
    expect(res.code).toBe(3);
  });

  it("injects declared secrets as the server does (NAME, NAME_FIELD) and refuses a missing one before running", () => {
    const marker = join(work.path, "ran");
    const ok = veil(["run", "--local", "--secret", "API_KEY", "--secret", "DB", "--", "sh", "-c", 'test "$API_KEY" = "$EXPECTED" && echo "$DB_USER ${#DB_PASSWORD}"'], undefined, {
      EXPECTED: CANARY,
    });
    expect(ok).toMatchObject({ code: 0, stdout: `app ${CANARY.length + 3}\n` });
    const missing = veil(["run", "--local", "--secret", "NOPE", "--", "touch", marker]);
    expect(missing).toMatchObject({ code: 125, stderr: "veil run: secret NOPE: NOT_FOUND: name: no secret named NOPE\n" });
    expect(existsSync(marker)).toBe(false);
    expect(veil(["run", "--local", "--", "no-such-command-here"])).toMatchObject({ code: 127, stderr: "veil run: no-such-command-here: command not found\n" });
  });

  it("an agent must be a reader: a non-reader is refused before anything runs, naming the secret", () => {
    expect(veil(["secret", "set", "BOT_USE", "--agent", "bot"], CANARY).code).toBe(0);
    expect(veil(["secret", "set", "BOT_READ", "--agent", "bot", "--reader", "bot"], `${CANARY}-r`).code).toBe(0);
    const created = JSON.parse(veil(["token", "create", "--agent", "bot", "--json"]).stdout) as { token: string };
    const marker = join(work.path, "bot-ran");
    const envFile = join(work.path, "bot.env");
    writeFileSync(envFile, "A=veil://BOT_READ\nB={{ secrets.BOT_USE }}\n");
    const refused = veil(["run", "--local", "--env-file", envFile, "--", "touch", marker], undefined, { VEIL_TOKEN: created.token });
    expect(refused.code).toBe(125);
    expect(refused.stderr).toMatch(/^veil run: secret BOT_USE: PERMISSION_DENIED: .*not an agent_reader/);
    expect(refused.stderr).not.toContain(CANARY);
    expect(existsSync(marker)).toBe(false);
    const allowed = veil(["run", "--local", "--secret", "BOT_READ", "--", "sh", "-c", "echo $BOT_READ"], undefined, { VEIL_TOKEN: created.token });
    expect(allowed).toMatchObject({ code: 0, stdout: "<secret-hidden>\n" });
    // Five CLI runs: on two busy cores each can take seconds.
  }, 180_000);

  it("usage errors exit 2 and name the flag or the file and line", () => {
    const bad = join(work.path, "bad.env");
    writeFileSync(bad, "OK=1\nthis is not an assignment\n");
    expect(veil(["run", "--local", "--env-file", bad, "--", "true"])).toMatchObject({ code: 2, stderr: `veil run: ${bad}:2: expected '=' after this\n` });
    expect(veil(["run", "--no-masking", "--", "true"])).toMatchObject({ code: 2, stderr: expect.stringMatching(/--no-masking: only with --local/) });
    expect(veil(["run", "--local", "--cwd", "x", "--", "true"])).toMatchObject({ code: 2, stderr: expect.stringMatching(/--cwd: not with --local/) });
    writeFileSync(bad, "K={{ secret.API_KEY }}\n");
    expect(veil(["run", "--local", "--env-file", bad, "--", "true"])).toMatchObject({ code: 6, stderr: expect.stringContaining(`${bad}:1: K: line 1, column 1: unknown expression`) });
    expect(veil(["run", "--help"]).stdout).toContain("--no-masking");
  }, 180_000);

  describe.skipIf(noPty !== undefined)(`on a terminal${noPty ? ` (skipped: ${noPty})` : ""}`, () => {
    it("passes stdin through, keeps stdin a TTY while masking needs pipes for stdout/stderr", async () => {
      const run = pty(["--secret", "API_KEY", "--", "sh", "-c", '[ -t 0 ] && echo in-tty; [ -t 1 ] || echo out-pipe; read line; echo "got:$line:$API_KEY"']);
      await run.waitFor(/out-pipe\n/);
      run.type("hello\n");
      expect(await run.exit).toBe(0);
      expect(run.output()).toContain("in-tty\nout-pipe\n");
      expect(run.output()).toContain("got:hello:<secret-hidden>\n");
    });

    it("masks a secret written in pieces across separate writes, on stdout and stderr", async () => {
      const script = 'printf %s "${API_KEY:0:9}"; sleep 0.3; printf "%s\\n" "${API_KEY:9}"; printf %s "${API_KEY:0:5}" >&2; sleep 0.3; printf "%s!\\n" "${API_KEY:5}" >&2';
      const run = pty(["--secret", "API_KEY", "--", "bash", "-c", script]);
      expect(await run.exit).toBe(0);
      expect(run.output()).toBe("<secret-hidden>\n<secret-hidden>!\n");
    });

    it("--no-masking warns on stderr, gives the command the terminal, and shows the value", async () => {
      const run = pty(["--no-masking", "--secret", "API_KEY", "--", "sh", "-c", '[ -t 1 ] && echo out-tty; echo "$API_KEY"']);
      expect(await run.exit).toBe(0);
      expect(run.output()).toContain("veil run: --no-masking: output is NOT masked");
      expect(run.output()).toContain(`out-tty\n${CANARY}\n`);
    });

    it("Ctrl-C reaches the command; one that dies of it exits 130, one that traps it exits with its own code", async () => {
      const dies = pty(["--", "sh", "-c", "echo ready; exec sleep 30"]);
      await dies.waitFor(/ready\n/);
      dies.type("\x03");
      expect(await dies.exit).toBe(130);
      const traps = pty(["--secret", "API_KEY", "--", "sh", "-c", 'trap \'echo "cleanup $API_KEY"; exit 4\' INT; echo ready; while :; do sleep 0.1; done']);
      await traps.waitFor(/ready\n/);
      traps.type("\x03");
      expect(await traps.exit).toBe(4);
      expect(traps.output()).toContain("cleanup <secret-hidden>\n");
    });

    it("forwards SIGTERM and SIGHUP sent to veil alone; exits 128+N when the command dies of it", async () => {
      for (const [signal, code] of [["SIGTERM", 143], ["SIGHUP", 129]] as const) {
        const run = pty(["--", "sh", "-c", "echo ready; exec sleep 30"]);
        await run.waitFor(/ready\n/);
        process.kill(await run.veilPid(), signal);
        expect(await run.exit).toBe(code);
      }
    });
  });
});
