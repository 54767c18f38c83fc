// The deploy files as CI can check them here: the Dockerfile parsed and linted, the systemd unit verified by systemd-analyze.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { tempDir } from "./support/temp-dir.js";

const deployFile = (name: string) => readFileSync(new URL(`../deploy/${name}`, import.meta.url), "utf8");

/** Dockerfile instructions: continuation lines joined, comments and the parser directive dropped. */
function instructions(text: string): { op: string; args: string }[] {
  const logical = text.replace(/\\\n/g, " ").split("\n");
  return logical
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"))
    .map((line) => {
      const [op, ...rest] = line.split(/\s+/);
      return { op: op!.toUpperCase(), args: rest.join(" ") };
    });
}

const KNOWN = new Set(["FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"]);

describe("deploy/Dockerfile", () => {
  const steps = instructions(deployFile("Dockerfile"));
  const finalStage = steps.slice(steps.map((s) => s.op).lastIndexOf("FROM"));

  it("uses only known instructions, and pinned Debian bookworm-slim Node 20 images", () => {
    for (const step of steps) expect(KNOWN, step.op).toContain(step.op);
    const images = steps.filter((s) => s.op === "FROM").map((s) => s.args.split(/\s+/)[0]!);
    expect(images.length).toBeGreaterThan(0);
    for (const image of images) expect(image).toMatch(/^node:20\.\d+\.\d+-bookworm-slim$/);
    // Every COPY --from names a stage defined above it.
    const stages = steps.filter((s) => s.op === "FROM").map((s) => /\bAS\s+(\S+)/i.exec(s.args)?.[1]);
    for (const copy of steps.filter((s) => s.op === "COPY" && s.args.startsWith("--from="))) expect(stages).toContain(/--from=(\S+)/.exec(copy.args)?.[1]);
  });

  it("installs bubblewrap, runs as a non-root user, keeps the data dir in a volume and checks /healthz", () => {
    expect(finalStage.some((s) => s.op === "RUN" && /apt-get install[^&]*\bbubblewrap\b/.test(s.args))).toBe(true);
    const user = finalStage.filter((s) => s.op === "USER").at(-1)?.args;
    expect(user).toBeDefined();
    expect(["root", "0"]).not.toContain(user);
    const env = finalStage.filter((s) => s.op === "ENV").map((s) => s.args).join(" ");
    const dataDir = /VEIL_DATA_DIR=(\S+)/.exec(env)?.[1];
    expect(dataDir).toBe("/var/lib/veil");
    const volumes = finalStage.filter((s) => s.op === "VOLUME").flatMap((s) => JSON.parse(s.args) as string[]);
    expect(volumes).toContain(dataDir);
    expect(finalStage.find((s) => s.op === "HEALTHCHECK")?.args).toContain("/healthz");
    // Exec form, so SIGTERM reaches node itself (a shell would swallow it).
    const entrypoint = JSON.parse(finalStage.find((s) => s.op === "ENTRYPOINT")!.args) as string[];
    expect(entrypoint).toEqual(["node", "/opt/veil/bin/veil.mjs"]);
    expect(JSON.parse(finalStage.find((s) => s.op === "CMD")!.args)).toEqual(["serve"]);
    // No TypeScript sources in the runtime stage: the bin runs dist/.
    expect(finalStage.filter((s) => s.op === "COPY").map((s) => s.args)).not.toContain(expect.stringMatching(/\/src\/(server|client)\b/));
  });
});

describe("deploy/veil.service", () => {
  const unit = deployFile("veil.service");
  const settings = new Map(
    unit
      .split("\n")
      .filter((l) => /^[A-Za-z]+=/.test(l))
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)] as const),
  );

  it("is hardened, with the data dir the one writable path", () => {
    expect(settings.get("ProtectSystem")).toBe("strict");
    expect(settings.get("ReadWritePaths")).toBe("/var/lib/veil");
    expect(settings.get("Environment")).toContain("VEIL_DATA_DIR=/var/lib/veil");
    for (const key of ["ProtectHome", "PrivateTmp", "NoNewPrivileges", "PrivateDevices", "ProtectKernelTunables"]) expect(settings.get(key), key).toBe("yes");
    // bwrap brings up the sandbox's loopback over netlink.
    expect(settings.get("RestrictAddressFamilies")?.split(" ")).toEqual(expect.arrayContaining(["AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"]));
    expect(settings.has("RestrictNamespaces")).toBe(false);
    expect(settings.get("User")).toBe("veil");
  });

  const analyze = "/usr/bin/systemd-analyze";
  const title = existsSync(analyze) ? "passes systemd-analyze verify" : `passes systemd-analyze verify (skipped: ${analyze} is not installed)`;
  it.skipIf(!existsSync(analyze))(title, () => {
    const dir = tempDir();
    try {
      // The unit names /usr/bin/node; where node lives elsewhere, verify against the node that runs this test.
      const text = existsSync("/usr/bin/node") ? unit : unit.replace("/usr/bin/node", process.execPath);
      const file = join(dir.path, "veil.service");
      writeFileSync(file, text);
      const res = spawnSync(analyze, ["verify", file], { encoding: "utf8" });
      // Unknown keys are only warnings (exit 0): an empty stderr is the real check.
      expect(res.stderr).toBe("");
      expect(res.status).toBe(0);
    } finally {
      dir.cleanup();
    }
  });
});
