// Request validation rules (the schemas server/rpc/rules.ts names per method): names, sizes and limits from the contract.
import { z } from "zod";
import { MAX_EGRESS_HOSTS, parseHostPattern } from "../domain/egress-binding.js";
import { VeilError } from "../errors.js";
import { LOOKUP_LIMITS, pointerTokens } from "../domain/lookup-source.js";
import { AGENT_NAME_PATTERN, AGENT_NAME_RULE, SECRET_NAME_PATTERN, SECRET_NAME_RULE } from "../domain/name-rules.js";
import { parseTemplate, referencedNames } from "../domain/templates.js";
import { Role } from "../../gen/veil/v1/token_pb.js";

/** Limits of the contract, in one place. */
export const LIMITS = {
  valueBytes: 64 * 1024,
  descriptionBytes: 1024,
  metadataEntries: 32,
  metadataKeyChars: 64,
  metadataValueChars: 512,
  secretsPerCall: 1000,
  messageBytes: 4 * 1024 * 1024,
  fieldsPerSecret: 64,
} as const;

const bytes = (s: string) => Buffer.byteLength(s, "utf8");

/** Environment-variable rules: what a secret name may be. */
export const secretName = z.string().regex(SECRET_NAME_PATTERN, SECRET_NAME_RULE);

/** "" is the tenant-wide scope. */
export const sessionName = z
  .string()
  .regex(/^([A-Za-z0-9][A-Za-z0-9_.:-]{0,127})?$/, "must be empty or match ^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$");

export const tenantName = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, "must match ^[a-z0-9][a-z0-9_-]{0,62}$");

export const agentName = z.string().regex(AGENT_NAME_PATTERN, "must match ^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$");

/** The agents a secret names (allowed_agents, agent_readers): agent names, at most 100. */
const agentList = z
  .array(z.string().regex(AGENT_NAME_PATTERN, AGENT_NAME_RULE))
  .max(100, "must name at most 100 agents");

const description = z.string().refine((s) => bytes(s) <= LIMITS.descriptionBytes, `must be at most ${LIMITS.descriptionBytes} bytes`);

const metadata = z
  .record(
    z.string().min(1, "keys must not be empty").max(LIMITS.metadataKeyChars, `keys must be at most ${LIMITS.metadataKeyChars} chars`),
    z.string().max(LIMITS.metadataValueChars, `values must be at most ${LIMITS.metadataValueChars} chars`),
  )
  .refine((m) => Object.keys(m).length <= LIMITS.metadataEntries, `must have at most ${LIMITS.metadataEntries} entries`);

/** One egress host pattern: `host`, `host:port`, `*.domain` or `[v6]:port` (see parseHostPattern). */
const hostPattern = z.string().superRefine((h, ctx) => {
  const parsed = parseHostPattern(h);
  if (typeof parsed === "string") ctx.addIssue({ code: "custom", message: parsed });
});

/** egress_hosts / egress_allow: at most 32 host patterns. */
const hostPatterns = z.array(hostPattern).max(MAX_EGRESS_HOSTS, `must hold at most ${MAX_EGRESS_HOSTS} hosts`);

const fieldKey = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "field names must match ^[A-Za-z0-9_.-]{1,64}$");

/** Headers a lookup may not set: the request's framing and routing are the server's. */
const RESERVED_HEADERS = /^(host|content-length|transfer-encoding|connection|keep-alive|upgrade|te|trailer|proxy-.*)$/i;

const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$/;

/**
 * Why a lookup header is refused, or undefined: names are HTTP tokens and no framing header;
 * values have no line breaks or NUL and well-formed expressions (errors give their position).
 * Checked per map, with the header name in the message: map keys are not field names.
 */
function headerProblem(name: string, value: string): string | undefined {
  if (!HEADER_NAME.test(name)) return "names must be HTTP header names (1-64 token chars)";
  if (RESERVED_HEADERS.test(name)) return "names must not be a framing header (Host, Content-Length, Connection, ...)";
  if (bytes(value) > 8192) return "values must be at most 8 KiB";
  if (/[\r\n\0]/.test(value)) return "values must not contain CR, LF or NUL";
  try {
    parseTemplate(value, name);
  } catch (error) {
    if (!(error instanceof VeilError)) throw error;
    return error.message.slice(name.length + 2);
  }
  return undefined;
}

/** SecretInput.lookup: an http(s) URL, GET or POST, sane headers, an RFC 6901 pointer, bounded TTL and timeout. */
const lookupSource = z.object({
  url: z
    .string()
    .max(2048, "must be at most 2048 chars")
    .superRefine((u, ctx) => {
      const problem = urlProblem(u);
      if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
    }),
  method: z.string().regex(/^(|GET|POST)$/i, "must be GET or POST (empty: GET)"),
  headers: z.record(z.string(), z.string()).superRefine((headers, ctx) => {
    if (Object.keys(headers).length > LOOKUP_LIMITS.maxHeaders) ctx.addIssue({ code: "custom", message: `must have at most ${LOOKUP_LIMITS.maxHeaders} headers` });
    for (const [name, value] of Object.entries(headers)) {
      const problem = headerProblem(name, value);
      if (problem !== undefined) ctx.addIssue({ code: "custom", message: `${name}: ${problem}` });
    }
  }),
  jsonPointer: z.string().max(1024, "must be at most 1024 chars").refine((p) => pointerTokens(p) !== undefined, "must be empty (the whole body) or an RFC 6901 JSON pointer such as /token or /data/0/value"),
  ttlSeconds: z.number().int().max(LOOKUP_LIMITS.maxTtlSeconds, `must be at most ${LOOKUP_LIMITS.maxTtlSeconds} (a day)`),
  timeoutMs: z.number().int().max(LOOKUP_LIMITS.maxTimeoutMs, `must be at most ${LOOKUP_LIMITS.maxTimeoutMs} (0 means ${LOOKUP_LIMITS.defaultTimeoutMs})`),
});

/** Why a lookup URL is refused, or undefined. */
function urlProblem(u: string): string | undefined {
  let url: URL;
  try {
    url = new URL(u);
  } catch {
    return "must be an absolute https:// or http:// URL";
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return "must be an https:// or http:// URL";
  if (url.username !== "" || url.password !== "") return "must not hold user info; send credentials in a header";
  if (url.hostname === "") return "must name a host";
  return undefined;
}

/** One SecretInput: at most one of text/fields/lookup, 64 KiB of value at most. */
export const secretInput = z
  .object({
    name: secretName,
    text: z.string().optional(),
    fields: z.record(fieldKey, z.string()).refine((f) => Object.keys(f).length <= LIMITS.fieldsPerSecret, `must have at most ${LIMITS.fieldsPerSecret} fields`),
    description,
    metadata,
    expectedVersion: z.bigint().optional(),
    allowedAgents: agentList,
    agentReaders: agentList,
    egressHosts: hostPatterns,
    egressBody: z.boolean(),
    lookup: lookupSource.optional(),
  })
  .superRefine((s, ctx) => {
    if (s.lookup !== undefined) {
      if (s.text !== undefined || Object.keys(s.fields).length > 0) ctx.addIssue({ code: "custom", path: ["lookup"], message: "set one of text, fields and lookup, not several" });
      for (const [header, value] of Object.entries(s.lookup.headers)) {
        // A header naming the secret itself could never be resolved.
        if (safeNames(value).includes(s.name)) ctx.addIssue({ code: "custom", path: ["lookup", "headers"], message: `${header}: must not name ${s.name} itself` });
      }
    }
    if (s.egressBody && s.egressHosts.length === 0) ctx.addIssue({ code: "custom", path: ["egressBody"], message: "needs egress_hosts (body substitution is per host)" });
    // Reading is on top of injecting: a reader the secret is not granted to would be a grant nobody asked for.
    if (s.allowedAgents.length > 0) {
      for (const [i, reader] of s.agentReaders.entries()) {
        if (!s.allowedAgents.includes(reader)) {
          ctx.addIssue({ code: "custom", path: ["agentReaders", i], message: `agent ${reader} is not in allowed_agents; a reader must also be granted injection` });
        }
      }
    }
    const hasFields = Object.keys(s.fields).length > 0;
    if (s.text !== undefined && hasFields) ctx.addIssue({ code: "custom", path: ["text"], message: "set either text or fields, not both" });
    const size = s.text !== undefined ? bytes(s.text) : Object.entries(s.fields).reduce((n, [k, v]) => n + bytes(k) + bytes(v), 0);
    if (size > LIMITS.valueBytes) ctx.addIssue({ code: "custom", path: [s.text !== undefined ? "text" : "fields"], message: `value must be at most ${LIMITS.valueBytes} bytes (64 KiB)` });
  });

export const setSecretsRequest = z.object({
  session: sessionName,
  secrets: z.array(secretInput).min(1, "must hold at least one secret").max(LIMITS.secretsPerCall, `must hold at most ${LIMITS.secretsPerCall} secrets per call`),
});

export const pageSize = z.number().int().max(1000, "must be at most 1000");

export const listSecretsRequest = z.object({
  session: sessionName,
  pageSize,
  pageToken: z.string().max(4096, "must be at most 4096 chars"),
  namePrefix: z.string().regex(/^[A-Za-z0-9_]{0,64}$/, "must match ^[A-Za-z0-9_]{0,64}$"),
});

export const getSecretRequest = z.object({ session: sessionName, name: secretName, version: z.bigint() });

export const listAgentsRequest = z.object({ session: sessionName });

export const getAgentAccessRequest = z.object({ agent: agentName, session: sessionName });

export const deleteSecretRequest = z.object({ session: sessionName, name: secretName });

export const createTokenRequest = z
  .object({
    tenant: z.union([z.literal(""), tenantName]),
    role: z.number(),
    agent: z.string(),
    ttlSeconds: z.bigint().max(10n * 365n * 86400n, "must be at most ten years"),
    description: description,
    allowNetwork: z.boolean(),
  })
  .superRefine((r, ctx) => {
    if (r.allowNetwork && r.role !== Role.AGENT) ctx.addIssue({ code: "custom", path: ["allowNetwork"], message: "is for ROLE_AGENT tokens only (admin tokens always have network)" });
    if (r.role === Role.AGENT && !agentName.safeParse(r.agent).success) {
      ctx.addIssue({ code: "custom", path: ["agent"], message: "is required for ROLE_AGENT and must match ^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$" });
    }
    if (r.role === Role.ADMIN && r.agent !== "") ctx.addIssue({ code: "custom", path: ["agent"], message: "must be empty for ROLE_ADMIN" });
    if (r.role !== Role.ADMIN && r.role !== Role.AGENT) ctx.addIssue({ code: "custom", path: ["role"], message: "must be ROLE_ADMIN or ROLE_AGENT" });
  });

export const listTokensRequest = z.object({ tenant: z.union([z.literal(""), tenantName]), pageSize, pageToken: z.string().max(4096) });

export const revokeTokenRequest = z.object({ tokenId: z.string().regex(/^tok_[0-9a-f]{16}$/, "must be a token id such as tok_0123456789abcdef") });

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, "names must match ^[A-Za-z_][A-Za-z0-9_]{0,127}$");
const command = z
  .string()
  .min(1, "must not be empty")
  .refine((c) => bytes(c) <= 64 * 1024, "must be at most 64 KiB")
  .refine((c) => !c.includes("\0"), "must not contain NUL bytes");
const timeoutMs = z.number().int().max(24 * 3600 * 1000, "must be at most 24 h");

export const startConversationRequest = z.object({
  session: sessionName,
  agent: z.union([z.literal(""), agentName]),
  secrets: z
    .array(secretName)
    .max(256, "must declare at most 256 secrets")
    .refine((s) => new Set(s).size === s.length, "must not declare a name twice"),
  commands: z.array(command).max(100, "must hold at most 100 commands"),
  env: z
    .record(envName, z.string().refine((v) => bytes(v) <= 64 * 1024 && !v.includes("\0"), "values must be at most 64 KiB, without NUL"))
    .refine((e) => Object.keys(e).length <= 256, "must have at most 256 entries"),
  workingDir: z
    .string()
    .max(1024, "must be at most 1024 chars")
    .refine((d) => !d.startsWith("/") && !d.split("/").includes(".."), "must be relative to the workspace, without '..'"),
  inject: z.number().refine((n) => n >= 0 && n <= 2, "must be INJECT_DECLARED or INJECT_REFERENCED"),
  sealedSecrets: z.record(secretName, z.string().max(64 * 1024, "tokens must be at most 64 KiB")),
  injectSettings: z.boolean(),
  timeoutMs,
  network: z.boolean(),
  networkMode: z.number().refine((n) => n >= 0 && n <= 2, "must be NETWORK_MODE_NONE or NETWORK_MODE_EGRESS"),
  egressAllow: hostPatterns,
  // Paths are checked (and named as files[path]) by the references module; here only sizes.
  files: z
    .record(z.string(), z.string().refine((v) => bytes(v) <= 64 * 1024, "files must be at most 64 KiB each"))
    .refine((f) => Object.keys(f).length <= 64, "must hold at most 64 files"),
}).superRefine((r, ctx) => {
  // 2 = NETWORK_MODE_EGRESS: the gateway-only network and the unrestricted one exclude each other.
  if (r.networkMode === 2 && r.network) ctx.addIssue({ code: "custom", path: ["networkMode"], message: "NETWORK_MODE_EGRESS cannot be combined with network: true; choose one" });
  if (r.egressAllow.length > 0 && r.networkMode !== 2) ctx.addIssue({ code: "custom", path: ["egressAllow"], message: "needs network_mode NETWORK_MODE_EGRESS" });
});

export const runCommandRequest = z.object({
  conversationId: z.string().regex(/^conv_(?:[a-z0-9-]{1,32}_)?[0-9a-f]{24}$/, "must be a conversation id from `started`"),
  command,
  timeoutMs,
  stdin: z.boolean(),
});

const commandId = z.string().regex(/^cmd_[1-9][0-9]{0,9}$/, "must be a command id from `command_started`");

/** The signals a caller may send to its command (those a terminal or a supervisor sends). */
export const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGKILL", "SIGUSR1", "SIGUSR2"] as const;

export const sendInputRequest = z.object({
  conversationId: z.string().regex(/^conv_(?:[a-z0-9-]{1,32}_)?[0-9a-f]{24}$/, "must be a conversation id from `started`"),
  commandId,
  data: z.instanceof(Uint8Array).refine((d) => d.length <= 64 * 1024, "must be at most 64 KiB per call"),
  eof: z.boolean(),
});

export const signalCommandRequest = z.object({
  conversationId: z.string().regex(/^conv_(?:[a-z0-9-]{1,32}_)?[0-9a-f]{24}$/, "must be a conversation id from `started`"),
  commandId,
  signal: z.enum(SIGNALS, { error: `must be one of ${SIGNALS.join(", ")}` }),
});

export const endConversationRequest = z.object({
  conversationId: z.string().regex(/^conv_(?:[a-z0-9-]{1,32}_)?[0-9a-f]{24}$/, "must be a conversation id from `started`"),
});

export const updateSettingsRequest = z.object({
  settings: z.object(
    {
      llm: z
        .object({
          model: z.string().max(256, "must be at most 256 chars").optional(),
          baseUrl: z
            .string()
            .max(2048, "must be at most 2048 chars")
            .refine((u) => u === "" || /^https?:\/\/[^\s]+$/.test(u), "must be an http(s) URL, or empty to clear")
            .optional(),
          apiKey: z.string().refine((k) => bytes(k) <= LIMITS.valueBytes, "must be at most 64 KiB").optional(),
          apiKeyEgressHosts: z
            .string()
            .superRefine((list, ctx) => {
              const hosts = splitHostList(list);
              if (hosts.length > MAX_EGRESS_HOSTS) ctx.addIssue({ code: "custom", message: `must hold at most ${MAX_EGRESS_HOSTS} hosts` });
              for (const h of hosts) {
                const parsed = parseHostPattern(h);
                if (typeof parsed === "string") ctx.addIssue({ code: "custom", message: `${JSON.stringify(h)} ${parsed} (a comma-separated list; "" clears it)` });
              }
            })
            .optional(),
        })
        .optional(),
      options: z
        .record(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "keys must match ^[A-Za-z0-9_.-]{1,64}$"), z.string().max(4096, "values must be at most 4096 chars"))
        .refine((o) => Object.keys(o).length <= 64, "must have at most 64 entries"),
    },
    { error: "is required" },
  ),
});

/** The secret names a header value's expressions use ([] when it does not parse: reported on its own). */
function safeNames(value: string): string[] {
  try {
    return referencedNames(parseTemplate(value, "value"));
  } catch {
    return [];
  }
}

/** The hosts of a comma-separated list (`api_key_egress_hosts`): "" is none. */
export function splitHostList(list: string): string[] {
  return list === "" ? [] : list.split(",").map((h) => h.trim());
}

export const listAuditEventsRequest = z.object({
  pageSize,
  pageToken: z.string().max(4096, "must be at most 4096 chars"),
  secretName: z.union([z.literal(""), secretName]),
  action: z.string().regex(/^[a-z.]{0,64}$/, "must be an action such as secret.get"),
});
