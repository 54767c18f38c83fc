// Secrets a conversation carries besides declared ones: opened sealed tokens and the tenant's LLM settings.
import { type InjectedSecret, injectSecret } from "./injection.js";
import type { Principal } from "./principal.js";
import { INJECT_PURPOSE, type Sealer } from "../crypto/sealed-tokens.js";
import type { Settings } from "./settings.js";

/** Opens sealed tokens (environment name to token) and, on request, adds LLM_API_KEY, LLM_MODEL, LLM_BASE_URL. */
export function createExtraSecrets(deps: { sealer: Sealer; settings: Settings }) {
  /** `taken`: the conversation's placeholders so far; tokens and keys with egress hosts become placeholders too. */
  return async (principal: Principal, request: { sealedSecrets: Record<string, string>; injectSettings: boolean }, taken: Set<string> = new Set()): Promise<InjectedSecret[]> => {
    const extra: InjectedSecret[] = [];
    for (const [name, token] of Object.entries(request.sealedSecrets)) {
      const { value, ...egress } = await deps.sealer.openWithEgress(principal.tenant, INJECT_PURPOSE, token, `sealed_secrets[${name}]`);
      extra.push(injectSecret(name, { kind: "text", text: value }, egress, taken));
    }
    if (request.injectSettings) {
      const { llm } = await deps.settings.read(principal.tenant);
      if (llm.apiKey !== undefined) {
        extra.push(injectSecret("LLM_API_KEY", { kind: "text", text: llm.apiKey }, { hosts: llm.apiKeyEgressHosts ?? [], body: false }, taken));
      }
      // Model and base URL are configuration, not secrets: injected, not masked.
      if (llm.model !== undefined) extra.push({ name: "LLM_MODEL", env: { LLM_MODEL: llm.model }, values: [] });
      if (llm.baseUrl !== undefined) extra.push({ name: "LLM_BASE_URL", env: { LLM_BASE_URL: llm.baseUrl }, values: [] });
    }
    return extra;
  };
}
