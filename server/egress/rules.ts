// Host rules of the egress contract as the gateway applies them: the domain's patterns, over hosts as clients write them.
import { isIP } from "node:net";
import { domainToASCII } from "node:url";
import { type HostPattern, parseHostPattern, patternAdmits } from "../domain/egress-binding.js";

/** A parsed rule: the same patterns SetSecrets and StartConversation validated. */
export type HostRule = HostPattern;

/** Parses a rule, or answers why it is not one. */
export const parseHostRule = parseHostPattern;

/** Normalises a host as a client wrote it (CONNECT authority or URL): lower-case, ASCII, no brackets or final dot. */
export function normaliseHost(host: string): string {
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  if (isIP(bare) !== 0) return bare.toLowerCase();
  return (domainToASCII(bare.replace(/\.$/, "")) || bare).toLowerCase();
}

/** Whether a rule admits `host:port`; names compare as written, nothing is resolved. */
export function matchesRule(rule: HostRule, host: string, port: number): boolean {
  return patternAdmits(rule, normaliseHost(host), port);
}

/** `matchesHost(pattern, host, port)` for a client-written host; a malformed rule matches nothing. */
export function matchesHost(pattern: string, host: string, port: number): boolean {
  const rule = parseHostPattern(pattern);
  return typeof rule !== "string" && matchesRule(rule, host, port);
}
