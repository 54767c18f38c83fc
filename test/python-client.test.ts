// Python grpcio as an independent client: compiles the .proto files at run time and must read Veil exactly as the contract says.
import { execFile, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "./support/server.js";

// Debian's python3 carries python3-grpcio; the pyenv python3 first on PATH does not.
const PYTHON = "/usr/bin/python3";
const script = fileURLToPath(new URL("./python/veil_client.py", import.meta.url));
const protoRoot = fileURLToPath(new URL("../proto", import.meta.url));

function hasGrpcio(): boolean {
  try {
    execFileSync(PYTHON, ["-c", "import grpc, grpc_tools"], { stdio: "ignore", timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}
const grpcioMissing = !hasGrpcio();
// The skip reason rides in the test names, so a skipped run says why instead of passing silently.
const skipNote = grpcioMissing ? ` (skipped: python3-grpcio not installed for ${PYTHON})` : "";

interface RpcFailure {
  code: string;
  details: string;
}
interface PythonSummary {
  python: string;
  grpcio: string;
  compileMs: number;
  protoc: { files: number; proto3Optional: "native" | "stripped" };
  steps: {
    health: { status?: string; error?: RpcFailure };
    noToken: RpcFailure;
    set: { names?: string[]; versions?: number[]; error?: RpcFailure };
    get: { name?: string; version?: number; kind?: string; matches?: boolean; createdAtSeconds?: number; error?: RpcFailure };
    badNameGet: RpcFailure;
    badNameSet: RpcFailure;
    missing: RpcFailure;
    conversation: { events: string[]; secrets?: string[]; stdout: string; stderr: string; exitCodes: number[]; error?: RpcFailure };
  };
}

describe("python grpcio client", () => {
  let server: TestServer;
  let summary: PythonSummary;
  let rawOut = "";
  // Random, and long enough that only a real leak could reproduce it in the output.
  const canary = `py-canary-${randomBytes(12).toString("hex")}`;

  beforeAll(async () => {
    if (grpcioMissing) return;
    server = await startTestServer();
    const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) => {
      execFile(
        PYTHON,
        [script, "--target", `127.0.0.1:${server.port}`, "--proto-root", protoRoot],
        // A minimal environment: the token and canary travel here, never on the command line.
        { env: { PATH: "/usr/bin:/bin", HOME: process.env.HOME ?? "/tmp", VEIL_TOKEN: server.token, VEIL_CANARY: canary }, timeout: 20_000 },
        (error, stdout, stderr) => (error ? reject(new Error(`python client failed: ${error.message}\n${stderr}`)) : resolve({ stdout, stderr })),
      );
    });
    rawOut = stdout + stderr;
    summary = JSON.parse(stdout) as PythonSummary;
  });

  afterAll(async () => {
    await server?.close();
  });

  it.skipIf(grpcioMissing)(`health answers SERVING without a token${skipNote}`, () => {
    expect(summary.steps.health).toEqual({ status: "SERVING" });
  });

  it.skipIf(grpcioMissing)(`a call without a token is UNAUTHENTICATED${skipNote}`, () => {
    expect(summary.steps.noToken.code).toBe("UNAUTHENTICATED");
  });

  it.skipIf(grpcioMissing)(`SetSecrets then GetSecret round-trip the value with bearer metadata${skipNote}`, () => {
    expect(summary.steps.set).toEqual({ names: ["PY_CANARY"], versions: [1] });
    expect(summary.steps.get).toMatchObject({ name: "PY_CANARY", version: 1, kind: "VALUE_KIND_TEXT", matches: true });
    // The timestamp import resolved through grpc_tools' bundled well-known types.
    expect(summary.steps.get.createdAtSeconds).toBeGreaterThan(1_600_000_000);
  });

  it.skipIf(grpcioMissing)(`a bad name is INVALID_ARGUMENT naming the field and the rule${skipNote}`, () => {
    expect(summary.steps.badNameGet.code).toBe("INVALID_ARGUMENT");
    expect(summary.steps.badNameGet.details).toMatch(/^name: must match \^\[A-Za-z\]/);
    expect(summary.steps.badNameSet.code).toBe("INVALID_ARGUMENT");
    expect(summary.steps.badNameSet.details).toMatch(/secrets\[0\]\.name: must match /);
    // Names are not secret, but the rejected value must not be echoed either.
    expect(summary.steps.badNameSet.details).not.toContain("xxxxxxxx");
  });

  it.skipIf(grpcioMissing)(`a missing secret is NOT_FOUND${skipNote}`, () => {
    expect(summary.steps.missing.code).toBe("NOT_FOUND");
  });

  it.skipIf(grpcioMissing)(`StartConversation streams masked output, also base64-encoded${skipNote}`, () => {
    const conv = summary.steps.conversation;
    expect(conv.error).toBeUndefined();
    expect(conv.secrets).toEqual(["PY_CANARY"]);
    expect(conv.events[0]).toBe("started");
    expect(conv.exitCodes).toEqual([0, 0]);
    expect(conv.stdout).toBe("<secret-hidden>\n<secret-hidden>\n");
    expect(conv.stderr).toBe("");
  });

  it.skipIf(grpcioMissing)(`nothing the Python client printed carries the value${skipNote}`, () => {
    expect(rawOut).not.toContain(canary);
    expect(rawOut).not.toContain(Buffer.from(canary).toString("base64").slice(0, 16));
  });
});
