// The console's link to Veil: Connect-Web on this page's origin, the bearer token (memory + sessionStorage), and error helpers.
import { type Client, Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { AgentService } from "../gen/veil/v1/agent_pb.js";
import { AuditService } from "../gen/veil/v1/audit_pb.js";
import { SecretService } from "../gen/veil/v1/secret_pb.js";
import { SettingsService } from "../gen/veil/v1/settings_pb.js";
import { TokenService } from "../gen/veil/v1/token_pb.js";

/** The services the console uses, over one transport that carries the token. */
export interface Api {
  secrets: Client<typeof SecretService>;
  tokens: Client<typeof TokenService>;
  agents: Client<typeof AgentService>;
  audit: Client<typeof AuditService>;
  settings: Client<typeof SettingsService>;
}

/** sessionStorage, not localStorage: a reload in this tab stays signed in, closing the tab forgets the token. */
const STORAGE_KEY = "veil.console.token";

export const INVALID_TOKEN = "This token is not valid: it is wrong, expired or revoked.";
export const NEEDS_ADMIN = "This is an agent token: the console needs an admin token.";

/** Builds the clients; `onUnauthenticated` runs when any call says the token stopped working (revoked, expired). */
export function createApi(token: string, onUnauthenticated: () => void = () => {}): Api {
  const auth: Interceptor = (next) => async (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    try {
      return await next(req);
    } catch (error) {
      if (errorCode(error) === Code.Unauthenticated) onUnauthenticated();
      throw error;
    }
  };
  const transport = createConnectTransport({ baseUrl: location.origin, interceptors: [auth] });
  return {
    secrets: createClient(SecretService, transport),
    tokens: createClient(TokenService, transport),
    agents: createClient(AgentService, transport),
    audit: createClient(AuditService, transport),
    settings: createClient(SettingsService, transport),
  };
}

/** Checks a pasted token with one admin call; resolves to undefined when it works, else the message to show. */
export async function checkToken(token: string): Promise<string | undefined> {
  try {
    await createApi(token).tokens.listTokens({ pageSize: 1 });
    return undefined;
  } catch (error) {
    if (errorCode(error) === Code.Unauthenticated) return INVALID_TOKEN;
    if (errorCode(error) === Code.PermissionDenied) return NEEDS_ADMIN;
    return `Could not reach Veil: ${errorText(error)}`;
  }
}

export function storedToken(): string | undefined {
  try {
    return sessionStorage.getItem(STORAGE_KEY) ?? undefined;
  } catch {
    return undefined;
  }
}

export function storeToken(token: string | undefined): void {
  try {
    if (token === undefined) sessionStorage.removeItem(STORAGE_KEY);
    else sessionStorage.setItem(STORAGE_KEY, token);
  } catch {
    // Storage can be disabled; the token then lives in memory only, which is fine.
  }
}

/** The Connect code of an error, if it is one. */
export function errorCode(error: unknown): Code | undefined {
  return error instanceof ConnectError ? error.code : undefined;
}

/** A message fit to show: the server's own text (it names fields and rules, never values). */
export function errorText(error: unknown): string {
  if (error instanceof ConnectError) return error.rawMessage || Code[error.code];
  return error instanceof Error ? error.message : String(error);
}
