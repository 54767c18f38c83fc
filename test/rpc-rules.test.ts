// The RPC rules table: every served method has a rule, a method without one fails the start or is refused, and the rules are what the interceptors do.
import { Code, type ConnectRouter, createClient, createConnectRouter, createRouterTransport, type ServiceImpl } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer, collect } from "../client/index.js";
import { BenchService } from "../gen/veil/bench/v1/bench_pb.js";
import { Health } from "../gen/grpc/health/v1/health_pb.js";
import { SecretService } from "../gen/veil/v1/secret_pb.js";
import { RPC_RULES } from "../server/rpc/rules.js";
import { startTestApp, type TestApp } from "./support/app.js";
import { expectCode } from "./support/expect-code.js";

/** The audited actions by procedure, as the audit trail has always named them (consoles and queries filter on them). */
const AUDIT_ACTIONS: Record<string, string> = {
  "veil.v1.SecretService/SetSecrets": "secret.set",
  "veil.v1.SecretService/ListSecrets": "secret.list",
  "veil.v1.SecretService/GetSecret": "secret.get",
  "veil.v1.SecretService/DeleteSecret": "secret.delete",
  "veil.v1.TokenService/CreateToken": "token.create",
  "veil.v1.TokenService/ListTokens": "token.list",
  "veil.v1.TokenService/RevokeToken": "token.revoke",
  "veil.v1.ConversationService/StartConversation": "conversation.start",
  "veil.v1.ConversationService/RunCommand": "conversation.run",
  "veil.v1.ConversationService/EndConversation": "conversation.end",
  "veil.v1.ConversationService/SendInput": "conversation.input",
  "veil.v1.ConversationService/SignalCommand": "conversation.signal",
  "veil.v1.SettingsService/GetSettings": "settings.get",
  "veil.v1.SettingsService/UpdateSettings": "settings.update",
  "veil.v1.KeyService/RotateKeys": "keys.rotate",
  "veil.v1.KeyService/RetireKeys": "keys.retire",
  "veil.v1.AgentService/ListAgents": "agent.list",
  "veil.v1.AgentService/GetAgentAccess": "agent.access",
  "veil.v1.BackupService/Backup": "backup.create",
};
const PUBLIC_SERVICES = ["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"];

describe("RPC rules", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  /** The services server/routes.ts registers, as a router holds them. */
  function servedServices() {
    const router = createConnectRouter();
    t.app.routes(router);
    return [...new Set(router.handlers.map((h) => h.service))];
  }

  it("has a rule for every method of every service the routes register, and the rules say what they always said", () => {
    const services = servedServices();
    expect(services.map((s) => s.typeName)).toEqual(expect.arrayContaining(["veil.v1.SecretService", "veil.v1.BackupService", ...PUBLIC_SERVICES]));
    const audited: Record<string, string> = {};
    for (const service of services) {
      for (const method of service.methods) {
        const procedure = `${service.typeName}/${method.name}`;
        const rule = t.app.rules.get(method);
        expect(rule, `${procedure} has no rule`).toBeDefined();
        expect(rule!.public, procedure).toBe(PUBLIC_SERVICES.includes(service.typeName));
        if (rule!.audit !== null) audited[procedure] = rule!.audit;
      }
    }
    expect(audited).toEqual(AUDIT_ACTIONS);
    // Nothing in the table the routes do not serve.
    expect(RPC_RULES.size).toBe(services.reduce((n, s) => n + s.methods.length, 0));
  });

  const bench: ServiceImpl<typeof BenchService> = {
    // biome-ignore lint/correctness/useYield: never reached; the call must be refused before it runs
    async *stream() {
      throw new Error("a method without a rule ran");
    },
  };

  it("fails the start, naming the method, when a served method has no rule", () => {
    const routes = (router: ConnectRouter) => {
      router.service(BenchService, bench);
      t.app.routes(router);
    };
    expect(() => routes(createConnectRouter())).toThrow(/no rule for veil\.bench\.v1\.BenchService\/Stream; every served method needs one/);
  });

  it("refuses a call to a method without a rule, with or without a token, before it runs", async () => {
    // Registered after the routes' own check, as a careless extra route would be.
    const routes = (router: ConnectRouter) => {
      t.app.routes(router);
      router.service(BenchService, bench);
    };
    for (const token of [t.app.operatorToken!, undefined]) {
      const client = createClient(
        BenchService,
        createRouterTransport(routes, { router: { interceptors: t.app.interceptors }, transport: { interceptors: token === undefined ? [] : [bearer(token)] } }),
      );
      const drain = async () => {
        for await (const _ of client.stream({ totalBytes: 1n, chunkBytes: 1 })) expect.unreachable("a refused call answered");
      };
      await expectCode(drain(), Code.Unimplemented, /^veil\.bench\.v1\.BenchService\/Stream: this server has no rule for the method/);
    }
  });

  it("public methods need no token; the others do", async () => {
    const transport = createRouterTransport(t.app.routes, { router: { interceptors: t.app.interceptors } });
    expect((await createClient(Health, transport).check({ service: "" })).status).toBeGreaterThan(0);
    await expectCode(createClient(SecretService, transport).listSecrets({}), Code.Unauthenticated, /^authorization: expected header/);
  });

  it("validates unary and streaming requests against their rule's schema, and audits the refusal", async () => {
    await expectCode(t.admin.secrets.getSecret({ name: "not a name" }), Code.InvalidArgument, /^name: /);
    await expectCode(collect(t.admin.startConversation({ secrets: ["not a name"], commands: [] })), Code.InvalidArgument, /^secrets\[0\]: /);
    const events = (await t.admin.audit.listAuditEvents({ pageSize: 100 })).events.filter((e) => e.action === "secret.get" || e.action === "conversation.start");
    expect(events.map((e) => `${e.action} ${e.detail}`)).toEqual(expect.arrayContaining(["secret.get InvalidArgument", "conversation.start InvalidArgument"]));
  });
});
