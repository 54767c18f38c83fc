// `veil token create|ls|revoke`: bearer tokens for admins and agents.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Role, type TokenInfo } from "../../index.js";
import { type Command, group, parse, parseDuration } from "../command.js";
import { CONNECTION_HELP, CONNECTION_OPTIONS, connect } from "../connection.js";
import { EXIT, table, UsageError } from "../io.js";

function infoJson(info: TokenInfo | undefined) {
  if (info === undefined) return undefined;
  return {
    tokenId: info.tokenId,
    tenant: info.tenant,
    role: info.role === Role.AGENT ? "agent" : "admin",
    agent: info.agent,
    createdAt: info.createdAt ? timestampDate(info.createdAt).toISOString() : "",
    expiresAt: info.expiresAt ? timestampDate(info.expiresAt).toISOString() : null,
    revoked: info.revoked,
    operator: info.operator,
    allowNetwork: info.allowNetwork,
    description: info.description,
  };
}

const create: Command = {
  name: "create",
  summary: "mint a token (printed once)",
  help: `Usage: veil token create [options]

Prints the new token on stdout (once: only its hash is stored).

Options:
  --agent NAME        an agent token bound to NAME (default: an admin token)
  --allow-network     with --agent: the token may start conversations with --network
                      (unrestricted network; admin tokens always may)
  --ttl DURATION      expiry such as 30m, 1h, 7d (default: never)
  --tenant T          tenant of the token (default: yours; others need the operator token)
  --description TEXT  what the token is for
  --json              token, id and details as JSON
${CONNECTION_HELP}`,
  async run(argv) {
    const { values } = parse(
      argv,
      {
        ...CONNECTION_OPTIONS,
        agent: { type: "string" },
        "allow-network": { type: "boolean" },
        ttl: { type: "string" },
        tenant: { type: "string" },
        description: { type: "string" },
        json: { type: "boolean" },
      },
      false,
    );
    if (values["allow-network"] && values.agent === undefined) throw new UsageError("--allow-network: only for agent tokens (add --agent NAME); admin tokens always have network");
    const ttlSeconds = values.ttl === undefined ? 0 : parseDuration(values.ttl, "--ttl");
    const client = await connect(values);
    const res = await client.tokens.createToken({
      tenant: values.tenant ?? "",
      role: values.agent !== undefined ? Role.AGENT : Role.ADMIN,
      agent: values.agent ?? "",
      ttlSeconds: BigInt(ttlSeconds),
      description: values.description ?? "",
      allowNetwork: values["allow-network"] ?? false,
    });
    if (values.json) process.stdout.write(`${JSON.stringify({ token: res.token, ...infoJson(res.info) })}\n`);
    else {
      process.stdout.write(`${res.token}\n`);
      process.stderr.write(`token id ${res.tokenId}${values.agent ? ` (agent ${values.agent}${res.info?.allowNetwork ? ", network allowed" : ""})` : " (admin)"}\n`);
    }
    return EXIT.ok;
  },
};

const ls: Command = {
  name: "ls",
  aliases: ["list"],
  summary: "list tokens (never their plaintext)",
  help: `Usage: veil token ls [--tenant T] [--json]\n\n${CONNECTION_HELP}`,
  async run(argv) {
    const { values } = parse(argv, { ...CONNECTION_OPTIONS, tenant: { type: "string" }, json: { type: "boolean" } }, false);
    const client = await connect(values);
    const tokens: TokenInfo[] = [];
    let pageToken = "";
    do {
      const page = await client.tokens.listTokens({ tenant: values.tenant ?? "", pageSize: 1000, pageToken });
      tokens.push(...page.tokens);
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    if (values.json) for (const t of tokens) process.stdout.write(`${JSON.stringify(infoJson(t))}\n`);
    else if (tokens.length > 0) {
      const rows = tokens.map((t) => {
        const j = infoJson(t)!;
        const state = j.revoked ? "revoked" : j.expiresAt && Date.parse(j.expiresAt) < Date.now() ? "expired" : "active";
        const network = j.role === "admin" || j.allowNetwork ? "yes" : "no";
        // ROLE is the JSON `role` (admin or agent); the operator is an admin, flagged as in JSON's `operator`.
        return [j.tokenId, j.role, j.agent || "-", network, state, j.expiresAt ?? "never", j.operator ? "yes" : "no", j.description];
      });
      process.stdout.write(`${table([["ID", "ROLE", "AGENT", "NETWORK", "STATE", "EXPIRES", "OPERATOR", "DESCRIPTION"], ...rows])}\n`);
    }
    return EXIT.ok;
  },
};

const revoke: Command = {
  name: "revoke",
  summary: "revoke a token by id",
  help: `Usage: veil token revoke TOKEN_ID [--json]

An operator token is revoked only with an operator token (itself included); if it is
lost, see 'veil token reset-operator'.

${CONNECTION_HELP}`,
  async run(argv) {
    const { values, positionals } = parse(argv, { ...CONNECTION_OPTIONS, json: { type: "boolean" } });
    if (positionals.length !== 1) throw new UsageError("expected exactly one TOKEN_ID");
    const client = await connect(values);
    await client.tokens.revokeToken({ tokenId: positionals[0]! });
    if (values.json) process.stdout.write(`${JSON.stringify({ tokenId: positionals[0], revoked: true })}\n`);
    else process.stderr.write(`${positionals[0]}: revoked\n`);
    return EXIT.ok;
  },
};

const resetOperator: Command = {
  name: "reset-operator",
  summary: "offline: revoke every operator token, write a new one",
  help: `Usage: veil token reset-operator [--data-dir D] [--master-key-file F]

Recovers a lost or revoked operator token while the server is stopped. Opening the data
dir needs its master key (VEIL_MASTER_KEY, --master-key-file or VEIL_MASTER_KEY_FILE, or
D/master.key, as for 'veil serve'): holding it is the proof. Revokes every operator token,
mints a new one, writes it to D/admin.token (mode 0600) and prints it once on stdout.
Refused while a server runs on D, or with a master key that does not match.

Options:
  --data-dir D            the data dir (default $VEIL_DATA_DIR or ./.veil)
  --master-key-file F     the master key, if not in VEIL_MASTER_KEY or D/master.key
  --json                  print {token, tokenId, tokenFile, revoked} as JSON`,
  async run(argv) {
    const { values } = parse(argv, { "data-dir": { type: "string" }, "master-key-file": { type: "string" }, json: { type: "boolean" } }, false);
    const { resetOperatorToken } = await import("../../../server/operator-reset.js");
    const reset = await resetOperatorToken({
      dataDir: values["data-dir"] ?? process.env.VEIL_DATA_DIR ?? "./.veil",
      ...(values["master-key-file"] !== undefined ? { masterKeyFile: values["master-key-file"] } : {}),
    });
    if (values.json) {
      process.stdout.write(`${JSON.stringify({ token: reset.token, tokenId: reset.tokenId, tokenFile: reset.tokenFile, revoked: reset.revokedIds })}\n`);
      return EXIT.ok;
    }
    process.stdout.write(`${reset.token}\n`);
    process.stderr.write(`operator token ${reset.tokenId} written to ${reset.tokenFile} (shown once); revoked: ${reset.revokedIds.join(", ") || "none"}\n`);
    return EXIT.ok;
  },
};

/** The `veil token` group. */
export const tokenCommand = group("token", "manage bearer tokens: create, list, revoke, reset the operator", [create, ls, revoke, resetOperator]);
