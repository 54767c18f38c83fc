// The access policy, tested directly: every role against every action, the decisions, codes and messages callers depend on.
import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { VeilError } from "../server/errors.js";
import { type Action, authorize, type Decision, decide, type PolicyRecords } from "../server/domain/policy.js";
import type { Principal } from "../server/domain/principal.js";
import type { SecretRecord } from "../server/domain/secret-records.js";
import { createLogger } from "../server/log.js";
import { toConnectError } from "../server/rpc/errors.js";

const base = { tokenId: "tok_0000000000000000", operator: false };
/** The columns of every row below, in this order. */
const ROLES = {
  operator: { ...base, tenant: "default", role: "admin", operator: true },
  admin: { ...base, tenant: "default", role: "admin" },
  /** An admin of another tenant: it reaches nothing of `default`. */
  acme: { ...base, tenant: "acme", role: "admin" },
  /** Granted injection of GRANTED, not a reader of it. */
  bot: { ...base, tenant: "default", role: "agent", agent: "bot" },
  /** An agent_reader of GRANTED. */
  reader: { ...base, tenant: "default", role: "agent", agent: "reader" },
  /** Named in no grant: injects only what every agent may. */
  stranger: { ...base, tenant: "default", role: "agent", agent: "stranger" },
  /** An agent token minted with allow_network, named in no grant. */
  netbot: { ...base, tenant: "default", role: "agent", agent: "netbot", allowNetwork: true },
} satisfies Record<string, Principal>;
type RoleName = keyof typeof ROLES;
const ROLE_NAMES = Object.keys(ROLES) as RoleName[];

function secret(name: string, allowedAgents: string[], agentReaders: string[]): SecretRecord {
  const at = "2026-01-01T00:00:00.000Z";
  return { name, session: "", description: "", metadata: {}, allowedAgents, agentReaders, kind: "text", fieldNames: [], egressHosts: [], egressBody: false, version: 1, createdAt: at, updatedAt: at };
}
/** Every agent injects, none reads. */
const OPEN = secret("OPEN", [], []);
const GRANTED = secret("GRANTED", ["bot", "reader"], ["reader"]);
/** Granted to an agent none of the callers is. */
const ELSEWHERE = secret("ELSEWHERE", ["someone"], ["someone"]);

const D = "denied";
const H = "hidden";
/**
 * One row per action and record: the decision for each role, in ROLES order
 * (operator admin acme bot reader stranger netbot). Secrets of another tenant never reach the
 * policy (the vault reads only under the caller's tenant prefix), so `acme` judged on a record of
 * `default` answers as an admin would: grants.test.ts asserts NOT_FOUND for it through the app.
 */
const TABLE: { action: Action; record?: unknown; label?: string; want: Decision[] }[] = [
  { action: "secret.list", record: OPEN, label: "OPEN", want: ["ok", "ok", "ok", "ok", "ok", "ok", "ok"] },
  { action: "secret.list", record: GRANTED, label: "GRANTED", want: ["ok", "ok", "ok", "ok", "ok", H, H] },
  { action: "secret.list", record: ELSEWHERE, label: "ELSEWHERE", want: ["ok", "ok", "ok", H, H, H, H] },
  { action: "secret.inject", record: OPEN, label: "OPEN", want: ["ok", "ok", "ok", "ok", "ok", "ok", "ok"] },
  { action: "secret.inject", record: GRANTED, label: "GRANTED", want: ["ok", "ok", "ok", "ok", "ok", D, D] },
  { action: "secret.inject", record: ELSEWHERE, label: "ELSEWHERE", want: ["ok", "ok", "ok", D, D, D, D] },
  { action: "secret.read", record: OPEN, label: "OPEN", want: ["ok", "ok", "ok", D, D, D, D] },
  { action: "secret.read", record: GRANTED, label: "GRANTED", want: ["ok", "ok", "ok", D, "ok", H, H] },
  { action: "secret.read", record: ELSEWHERE, label: "ELSEWHERE", want: ["ok", "ok", "ok", H, H, H, H] },
  { action: "secret.write", want: ["ok", "ok", "ok", D, D, D, D] },
  { action: "secret.delete", want: ["ok", "ok", "ok", D, D, D, D] },
  { action: "agent.list", want: ["ok", "ok", "ok", D, D, D, D] },
  { action: "agent.access", want: ["ok", "ok", "ok", D, D, D, D] },
  { action: "token.create", record: { tenant: "default" }, label: "for default", want: ["ok", "ok", D, D, D, D, D] },
  { action: "token.create", record: { tenant: "acme" }, label: "for acme", want: ["ok", D, "ok", D, D, D, D] },
  { action: "token.list", record: { tenant: "default" }, label: "of default", want: ["ok", "ok", D, D, D, D, D] },
  { action: "token.list", record: { tenant: "acme" }, label: "of acme", want: ["ok", D, "ok", D, D, D, D] },
  { action: "token.revoke", want: ["ok", "ok", "ok", D, D, D, D] },
  { action: "token.revoke", record: { id: "tok_1", tenant: "default", operator: false }, label: "a token of default", want: ["ok", "ok", H, D, D, D, D] },
  { action: "token.revoke", record: { id: "tok_2", tenant: "default", operator: true }, label: "the operator token", want: ["ok", D, H, D, D, D, D] },
  { action: "token.revoke", record: { id: "tok_3", tenant: "acme", operator: false }, label: "a token of acme", want: ["ok", H, "ok", D, D, D, D] },
  { action: "tenant.any", want: ["ok", D, D, D, D, D, D] },
  { action: "settings.read", want: ["ok", "ok", "ok", "ok", "ok", "ok", "ok"] },
  { action: "settings.write", want: ["ok", "ok", "ok", D, D, D, D] },
  { action: "audit.read", want: ["ok", "ok", "ok", D, D, D, D] },
  { action: "key.rotate", want: ["ok", D, D, D, D, D, D] },
  { action: "key.retire", want: ["ok", D, D, D, D, D, D] },
  { action: "key.status", want: ["ok", D, D, D, D, D, D] },
  { action: "backup", want: ["ok", D, D, D, D, D, D] },
  { action: "conversation.start", want: ["ok", "ok", "ok", "ok", "ok", "ok", "ok"] },
  { action: "conversation.act_as", record: { agent: "" }, label: "itself", want: ["ok", "ok", "ok", "ok", "ok", "ok", "ok"] },
  { action: "conversation.act_as", record: { agent: "bot" }, label: "bot", want: ["ok", "ok", "ok", "ok", D, D, D] },
  { action: "conversation.use", record: { id: "conv_1", owner: { tenant: "default", agent: "bot" } }, label: "bot's", want: ["ok", "ok", H, "ok", H, H, H] },
  { action: "conversation.use", record: { id: "conv_2", owner: { tenant: "default", agent: "" } }, label: "an admin's", want: ["ok", "ok", H, H, H, H, H] },
  { action: "conversation.use", record: { id: "conv_3", owner: { tenant: "acme", agent: "bot" } }, label: "acme's bot's", want: [H, H, "ok", H, H, H, H] },
  { action: "network", want: ["ok", "ok", "ok", D, D, D, "ok"] },
];

type AnyArgs = [record?: unknown, where?: string];
const decideAny = (p: Principal, action: Action, ...args: AnyArgs) => (decide as (p: Principal, a: Action, ...r: AnyArgs) => Decision)(p, action, ...args);
const authorizeAny = (p: Principal, action: Action, ...args: AnyArgs) => (authorize as (p: Principal, a: Action, ...r: AnyArgs) => void)(p, action, ...args);

/** What `authorize` threw, as the gRPC code and message the caller gets. */
function refusal(p: Principal, action: Action, record?: unknown, where?: string): { code: Code; message: string } | undefined {
  try {
    authorizeAny(p, action, record, where);
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(VeilError);
    const ce = toConnectError(error, createLogger(() => {}), "test");
    return { code: ce.code, message: ce.rawMessage };
  }
}

describe("the access policy, role by action", () => {
  it("has a row for every action it knows", () => {
    const covered = new Set(TABLE.map((row) => row.action));
    const actions: Action[] = Object.keys({
      "secret.list": 0, "secret.inject": 0, "secret.read": 0, "secret.write": 0, "secret.delete": 0, "agent.list": 0, "agent.access": 0,
      "token.create": 0, "token.list": 0, "token.revoke": 0, "tenant.any": 0, "settings.read": 0, "settings.write": 0, "audit.read": 0,
      "key.rotate": 0, "key.retire": 0, "key.status": 0, backup: 0, "conversation.start": 0, "conversation.act_as": 0, "conversation.use": 0, network: 0,
    } satisfies Record<keyof PolicyRecords, 0>) as Action[];
    expect([...covered].sort()).toEqual([...actions].sort());
  });

  for (const row of TABLE) {
    it(`${row.action}${row.label ? ` (${row.label})` : ""}: ${row.want.join(" ")}`, () => {
      const got = ROLE_NAMES.map((role) => decideAny(ROLES[role], row.action, row.record));
      expect(Object.fromEntries(ROLE_NAMES.map((r, i) => [r, got[i]]))).toEqual(Object.fromEntries(ROLE_NAMES.map((r, i) => [r, row.want[i]])));
      // authorize agrees with decide, and a refusal is PERMISSION_DENIED or NOT_FOUND, never anything else.
      for (const [i, role] of ROLE_NAMES.entries()) {
        const thrown = refusal(ROLES[role], row.action, row.record);
        const want = row.want[i];
        expect(thrown?.code, `${role}`).toBe(want === "ok" ? undefined : want === "denied" ? Code.PermissionDenied : Code.NotFound);
      }
    });
  }
});

describe("the policy's messages name the field and the fix", () => {
  const cases: { name: string; role: RoleName; action: Action; record?: unknown; where?: string; code: Code; message: string }[] = [
    {
      name: "a hidden secret reads exactly like a missing one",
      role: "stranger",
      action: "secret.read",
      record: GRANTED,
      code: Code.NotFound,
      message: "name: no secret named GRANTED",
    },
    {
      name: "an injector that is no reader is told how to become one",
      role: "bot",
      action: "secret.read",
      record: GRANTED,
      code: Code.PermissionDenied,
      message: "name: agent bot may inject GRANTED but is not an agent_reader of it; an admin can add it (veil secret set GRANTED --reader bot)",
    },
    {
      name: "a declared secret not granted names the request field",
      role: "stranger",
      action: "secret.inject",
      record: GRANTED,
      where: "secrets[2]",
      code: Code.PermissionDenied,
      message: "secrets[2]: secret GRANTED is not granted to agent stranger",
    },
    { name: "agent writes", role: "bot", action: "secret.write", code: Code.PermissionDenied, message: "SetSecrets: agent tokens cannot do this; use an admin token" },
    { name: "agent deletes", role: "bot", action: "secret.delete", code: Code.PermissionDenied, message: "DeleteSecret: agent tokens cannot do this; use an admin token" },
    {
      name: "network needs allow_network",
      role: "bot",
      action: "network",
      code: Code.PermissionDenied,
      message: "network: agent tokens need a token created with allow_network (veil token create --agent bot --allow-network)",
    },
    {
      name: "a tenant admin revokes the operator token",
      role: "admin",
      action: "token.revoke",
      record: { id: "tok_0123456789abcdef", tenant: "default", operator: true },
      code: Code.PermissionDenied,
      message: "token_id: tok_0123456789abcdef is the operator token; only an operator token revokes it (offline: veil token reset-operator)",
    },
    {
      name: "another tenant's token is not found",
      role: "admin",
      action: "token.revoke",
      record: { id: "tok_0123456789abcdef", tenant: "acme", operator: false },
      code: Code.NotFound,
      message: "token_id: no token tok_0123456789abcdef",
    },
    { name: "minting for another tenant", role: "admin", action: "token.create", record: { tenant: "acme" }, code: Code.PermissionDenied, message: "tenant: an admin token mints tokens only for its own tenant" },
    { name: "an agent mints", role: "bot", action: "token.create", record: { tenant: "default" }, code: Code.PermissionDenied, message: "CreateToken: agent tokens cannot mint tokens" },
    { name: "keys are the operator's", role: "admin", action: "key.rotate", code: Code.PermissionDenied, message: "keys: only the operator token manages key generations" },
    { name: "backups are the operator's", role: "admin", action: "backup", code: Code.PermissionDenied, message: "backup: only the operator token takes backups (it holds every tenant's data)" },
    { name: "the audit trail is the admins'", role: "bot", action: "audit.read", code: Code.PermissionDenied, message: "ListAuditEvents: only admin tokens read the audit trail" },
    { name: "an agent acts only as itself", role: "bot", action: "conversation.act_as", record: { agent: "reader" }, code: Code.PermissionDenied, message: "agent: this token acts only as agent bot" },
    {
      name: "another agent's conversation is not found",
      role: "reader",
      action: "conversation.use",
      record: { id: "conv_0123", owner: { tenant: "default", agent: "bot" } },
      code: Code.NotFound,
      message: "conversation_id: no live conversation conv_0123",
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(refusal(ROLES[c.role], c.action, c.record, c.where)).toEqual({ code: c.code, message: c.message });
    });
  }
});
