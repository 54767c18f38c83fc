// Host rules of the egress contract: `host` (443 and 80), `host:port` (that port), `*.domain` (subdomains only).
import { isIP } from "node:net";
import { domainToASCII } from "node:url";

/** A parsed rule: the name (lower-cased, ASCII), whether it is `*.name`, and its port if it has one. */
export interface HostRule {
  readonly name: string;
  readonly wildcard: boolean;
  readonly port?: number;
}

const RULE = /^(\*\.)?(\[[0-9a-fA-F:.]+\]|[^:*[\]\s/]+)(?::(\d{1,5}))?$/;

/** Parses a rule, or answers why it is not one (for INVALID_ARGUMENT naming the rule). */
export function parseHostRule(text: string): HostRule | string {
  const m = RULE.exec(text.trim());
  if (m === null) return "must be host, host:port or *.domain (no other wildcards)";
  const wildcard = m[1] !== undefined;
  let name = m[2]!;
  if (name.startsWith("[")) {
    name = name.slice(1, -1).toLowerCase();
    if (isIP(name) !== 6 || wildcard) return "a bracketed address must be an IPv6 literal, without a wildcard";
  } else {
    const ascii = domainToASCII(name.replace(/\.$/, ""));
    if (ascii === "" || ascii.startsWith(".") || ascii.includes("..")) return "must be host, host:port or *.domain";
    if (wildcard && isIP(ascii) !== 0) return "a wildcard needs a domain, not an address";
    name = ascii.toLowerCase();
  }
  if (m[3] === undefined) return { name, wildcard };
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return "the port must be 1-65535";
  return { name, wildcard, port };
}

/** Normalises a host as a client wrote it (CONNECT authority or URL): lower-case, ASCII, no brackets or final dot. */
export function normaliseHost(host: string): string {
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  if (isIP(bare) !== 0) return bare.toLowerCase();
  return (domainToASCII(bare.replace(/\.$/, "")) || bare).toLowerCase();
}

/** Whether a rule admits `host:port`; names compare as written, nothing is resolved. */
export function matchesRule(rule: HostRule, host: string, port: number): boolean {
  const h = normaliseHost(host);
  const nameOk = rule.wildcard ? h.endsWith(`.${rule.name}`) && h.length > rule.name.length + 1 : h === rule.name;
  return nameOk && (rule.port === undefined ? port === 443 || port === 80 : port === rule.port);
}

/** `matchesHost(pattern, host, port)`: the same over a rule's text; a malformed rule matches nothing. */
export function matchesHost(pattern: string, host: string, port: number): boolean {
  const rule = parseHostRule(pattern);
  return typeof rule !== "string" && matchesRule(rule, host, port);
}
