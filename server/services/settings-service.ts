// SettingsService: agent settings whose secret fields are only ever answered redacted or sealed.
import type { ServiceImpl } from "@connectrpc/connect";
import { authorize } from "../domain/policy.js";
import { INJECT_PURPOSE, type Sealer } from "../crypto/sealed-tokens.js";
import type { PlainSettings, Settings } from "../domain/settings.js";
import { auditTrail } from "../rpc/audit.js";
import { principalOf } from "../rpc/context.js";
import { splitHostList } from "../rpc/schemas.js";
import { Expose, type SettingsService } from "../../gen/veil/v1/settings_pb.js";

/** What a set secret field reads as in the redacted view. */
export const REDACTED = "**********";

/** How long a sealed settings token opens; a frontend fetches a fresh one after that. */
export const SEALED_SETTINGS_TTL_SECONDS = 24 * 3600;

/** Names (never values) of what an update changes, for the audit trail. */
function changedFields(
  llm: { model?: string | undefined; baseUrl?: string | undefined; apiKey?: string | undefined; apiKeyEgressHosts?: string | undefined } | undefined,
  options: Record<string, string>,
): string {
  const llmFields = (["model", "baseUrl", "apiKey", "apiKeyEgressHosts"] as const).filter((k) => llm?.[k] !== undefined).map((k) => `llm.${k}`);
  return [...llmFields, ...Object.keys(options).map((k) => `options.${k}`)].join(",");
}

/** Builds the SettingsService handlers. */
export function createSettingsService(deps: { settings: Settings; sealer: Sealer }): ServiceImpl<typeof SettingsService> {
  function answer(tenant: string, plain: PlainSettings, expose: Expose) {
    const { apiKey, apiKeyEgressHosts, ...llm } = plain.llm;
    // A sealed key carries its hosts, so it is injected as a placeholder like LLM_API_KEY itself.
    const egress = { hosts: apiKeyEgressHosts ?? [], body: false };
    const exposed =
      apiKey === undefined ? undefined : expose === Expose.SEALED ? deps.sealer.seal(tenant, INJECT_PURPOSE, apiKey, SEALED_SETTINGS_TTL_SECONDS, egress) : REDACTED;
    const hosts = apiKeyEgressHosts !== undefined ? { apiKeyEgressHosts: apiKeyEgressHosts.join(",") } : {};
    return { llm: { ...llm, ...(exposed !== undefined ? { apiKey: exposed } : {}), ...hosts }, options: plain.options };
  }

  return {
    async getSettings(req, ctx) {
      const principal = principalOf(ctx);
      authorize(principal, "settings.read");
      return { settings: answer(principal.tenant, await deps.settings.read(principal.tenant), req.expose) };
    },

    async updateSettings(req, ctx) {
      const principal = principalOf(ctx);
      authorize(principal, "settings.write");
      const llm = req.settings!.llm;
      await deps.settings.update(
        principal.tenant,
        {
          ...(llm?.model !== undefined ? { model: llm.model } : {}),
          ...(llm?.baseUrl !== undefined ? { baseUrl: llm.baseUrl } : {}),
          ...(llm?.apiKey !== undefined ? { apiKey: llm.apiKey } : {}),
          ...(llm?.apiKeyEgressHosts !== undefined ? { apiKeyEgressHosts: splitHostList(llm.apiKeyEgressHosts) } : {}),
          options: { ...req.settings!.options },
        },
        auditTrail(ctx).batch([{ detail: changedFields(llm, req.settings!.options) }]),
      );
      return { settings: answer(principal.tenant, await deps.settings.read(principal.tenant), Expose.REDACTED) };
    },
  };
}
