// Server configuration from flags and VEIL_* variables, validated once at start.
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { z } from "zod";
import { defaultWorkDir } from "./domain/work-dir.js";

/** Everything `veil serve` can be told. */
export interface ServerConfig {
  host: string;
  port: number;
  dataDir: string;
  masterKeyFile?: string;
  /** "required" (also given as "auto"): commands only in bubblewrap; "off": never. */
  sandbox: "required" | "off";
  /** bwrap binary to use; undefined: searched on PATH. */
  bwrap?: string;
  /** Where conversations' workspaces live (never inside the data dir by default). */
  workDir: string;
  commandTimeoutMs: number;
  outputLimitBytes: number;
  idleTimeoutMs: number;
  maxConversationsPerTenant: number;
  reencryptRate: number;
  /** Per conversation: processes (and threads) at once. */
  maxProcesses: number;
  /** Per conversation: memory of its processes, tmpfs pages included. */
  memoryLimitBytes: number;
  /** Per conversation: the workspace, and separately /tmp and /dev/shm in the sandbox. */
  diskLimitBytes: number;
  /** Per conversation: the largest file a command may write (RLIMIT_FSIZE). */
  fileSizeLimitBytes: number;
  /** Extra CA bundle the egress gateway trusts for upstreams, besides the system's. */
  egressCaFile?: string;
  /** Let the egress gateway reach loopback and private addresses (off by default). */
  egressAllowPrivate: boolean;
  /** Extra CA bundle lookup secrets' HTTPS servers are verified with, besides the system's. */
  lookupCaFile?: string;
  /** Let lookup secrets reach loopback and private addresses (off by default). */
  allowPrivateLookups: boolean;
  /** Where the built web console lives; undefined: the package's dist/console. */
  consoleDir?: string;
}

/** A configuration mistake; the CLI prints it on one line and exits 2. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

const integer = (min: number, max: number) => z.coerce.number().int(`must be a whole number`).min(min, `must be at least ${min}`).max(max, `must be at most ${max}`);

const schema = z.object({
  host: z.string().min(1, "must not be empty"),
  port: integer(0, 65535),
  dataDir: z.string().min(1, "must not be empty"),
  masterKeyFile: z.string().min(1, "must not be empty").optional(),
  sandbox: z.enum(["auto", "required", "off"], { error: "must be auto, required or off" }).transform((mode) => (mode === "auto" ? "required" : mode)),
  bwrap: z.string().min(1, "must not be empty").optional(),
  workDir: z.string().min(1, "must not be empty").optional(),
  commandTimeoutMs: integer(100, 24 * 3600 * 1000),
  outputLimitBytes: integer(1024, 1024 * 1024 * 1024),
  idleTimeoutMs: integer(1000, 24 * 3600 * 1000),
  maxConversationsPerTenant: integer(1, 10_000),
  reencryptRate: integer(1, 10_000_000),
  maxProcesses: integer(8, 1_000_000),
  memoryLimitBytes: integer(16 * 1024 * 1024, 2 ** 50),
  diskLimitBytes: integer(1024 * 1024, 2 ** 50),
  fileSizeLimitBytes: integer(64 * 1024, 2 ** 50),
  egressCaFile: z.string().min(1, "must not be empty").optional(),
  egressAllowPrivate: z.enum(["true", "false"], { error: "must be true or false" }).transform((v) => v === "true"),
  lookupCaFile: z.string().min(1, "must not be empty").optional(),
  allowPrivateLookups: z.enum(["true", "false"], { error: "must be true or false" }).transform((v) => v === "true"),
  consoleDir: z.string().min(1, "must not be empty").optional(),
});

/** Flags with their environment variables and defaults. */
const OPTIONS = {
  host: { flag: "host", env: "VEIL_HOST", default: "127.0.0.1" },
  port: { flag: "port", env: "VEIL_PORT", default: "8080" },
  dataDir: { flag: "data-dir", env: "VEIL_DATA_DIR", default: "./.veil" },
  masterKeyFile: { flag: "master-key-file", env: "VEIL_MASTER_KEY_FILE", default: undefined },
  sandbox: { flag: "sandbox", env: "VEIL_SANDBOX", default: "required" },
  bwrap: { flag: "bwrap", env: "VEIL_BWRAP", default: undefined },
  workDir: { flag: "work-dir", env: "VEIL_WORK_DIR", default: undefined },
  commandTimeoutMs: { flag: "command-timeout-ms", env: "VEIL_COMMAND_TIMEOUT_MS", default: "120000" },
  outputLimitBytes: { flag: "output-limit-bytes", env: "VEIL_OUTPUT_LIMIT_BYTES", default: String(16 * 1024 * 1024) },
  idleTimeoutMs: { flag: "idle-timeout-ms", env: "VEIL_IDLE_TIMEOUT_MS", default: String(15 * 60 * 1000) },
  maxConversationsPerTenant: { flag: "max-conversations", env: "VEIL_MAX_CONVERSATIONS", default: "32" },
  reencryptRate: { flag: "reencrypt-rate", env: "VEIL_REENCRYPT_RATE", default: "5000" },
  maxProcesses: { flag: "max-processes", env: "VEIL_MAX_PROCESSES", default: "256" },
  memoryLimitBytes: { flag: "memory-limit-bytes", env: "VEIL_MEMORY_LIMIT_BYTES", default: String(1024 * 1024 * 1024) },
  diskLimitBytes: { flag: "disk-limit-bytes", env: "VEIL_DISK_LIMIT_BYTES", default: String(1024 * 1024 * 1024) },
  fileSizeLimitBytes: { flag: "file-size-limit-bytes", env: "VEIL_FILE_SIZE_LIMIT_BYTES", default: String(256 * 1024 * 1024) },
  egressCaFile: { flag: "egress-ca-file", env: "VEIL_EGRESS_CA_FILE", default: undefined },
  // A switch: `--egress-allow-private` alone means true; the variable takes true/false.
  egressAllowPrivate: { flag: "egress-allow-private", env: "VEIL_EGRESS_ALLOW_PRIVATE", default: "false", boolean: true },
  lookupCaFile: { flag: "lookup-ca-file", env: "VEIL_LOOKUP_CA_FILE", default: undefined },
  allowPrivateLookups: { flag: "allow-private-lookups", env: "VEIL_ALLOW_PRIVATE_LOOKUPS", default: "false", boolean: true },
  consoleDir: { flag: "console-dir", env: "VEIL_CONSOLE_DIR", default: undefined },
} as const;

/** The flag table for `veil serve --help`. */
export const SERVE_FLAGS = Object.values(OPTIONS).map((o) => ({ flag: `--${o.flag}`, env: o.env, default: o.default, isSwitch: "boolean" in o }));

/** Parses `veil serve` arguments over the environment; flags win over variables. */
export function parseServerConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): ServerConfig {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: Object.fromEntries(Object.values(OPTIONS).map((o) => [o.flag, { type: "boolean" in o ? ("boolean" as const) : ("string" as const) }])),
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new ConfigError((error as Error).message.split("\n")[0] ?? "bad arguments");
  }
  const raw = Object.fromEntries(
    Object.entries(OPTIONS).map(([key, o]) => {
      const flag = values[o.flag];
      return [key, (typeof flag === "boolean" ? String(flag) : flag) ?? env[o.env] ?? o.default];
    }),
  );
  const result = schema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const option = OPTIONS[issue.path[0] as keyof typeof OPTIONS];
    throw new ConfigError(`--${option.flag} (or ${option.env}): ${issue.message}`);
  }
  const { masterKeyFile, bwrap, workDir, egressCaFile, lookupCaFile, consoleDir, ...rest } = result.data;
  // Absolute from here on: workspaces and sandbox binds need absolute paths.
  const dataDir = resolve(rest.dataDir);
  return {
    ...rest,
    dataDir,
    workDir: workDir !== undefined ? resolve(workDir) : defaultWorkDir(dataDir),
    ...(masterKeyFile !== undefined ? { masterKeyFile: resolve(masterKeyFile) } : {}),
    ...(bwrap !== undefined ? { bwrap: resolve(bwrap) } : {}),
    ...(egressCaFile !== undefined ? { egressCaFile: resolve(egressCaFile) } : {}),
    ...(lookupCaFile !== undefined ? { lookupCaFile: resolve(lookupCaFile) } : {}),
    ...(consoleDir !== undefined ? { consoleDir: resolve(consoleDir) } : {}),
  };
}
