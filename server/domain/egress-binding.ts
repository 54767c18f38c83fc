// What the egress gateway sees of a conversation: placeholders, their values and hosts; host patterns and their matching.
import { randomBytes, randomInt } from "node:crypto";

/** The network a conversation's sandbox gets: none at all, or only through Veil's egress gateway. */
export type NetworkMode = "none" | "egress";

/** One placeholder the gateway may swap for its value, only on requests to `hosts`. */
export interface Substitution {
  /** What the sandbox holds instead of the value (`veil_ph_...`). */
  readonly placeholder: string;
  /** The real value; never logged, never in an error, never inside the sandbox. */
  readonly value: string;
  /** For audit: the secret's name, `NAME.FIELD` for a field of a fields secret. */
  readonly secret: string;
  /** The secret's host patterns (`host`, `host:port`, `*.domain`), lowercased. */
  readonly hosts: readonly string[];
  /** Whether the placeholder is also replaced in request bodies (opt-in per secret). */
  readonly body: boolean;
}

/**
 * A live conversation's binding to the gateway: transport-free and frozen. The gateway looks
 * it up by `egressId` (`Conversations.findByEgressId`), never by the conversation id, so the
 * id the sandbox holds in its proxy address reveals nothing else.
 */
export interface EgressBinding {
  /** Opaque, random, per conversation: what the sandbox's proxy URL or socket path carries. */
  readonly egressId: string;
  readonly conversationId: string;
  readonly tenant: string;
  /** "" when an admin started the conversation without an agent. */
  readonly agent: string;
  /** The token that started the conversation (for the audit events the gateway records). */
  readonly tokenId: string;
  readonly networkMode: NetworkMode;
  /** `egress_allow`: host patterns reachable without substitution, lowercased. */
  readonly allow: readonly string[];
  readonly substitutions: readonly Substitution[];
}

/** Every placeholder starts with this, so a reader of a transcript recognises one. */
export const PLACEHOLDER_PREFIX = "veil_ph_";

/** Placeholders are at least this long (8 prefix + 16 random characters, about 95 bits). */
export const PLACEHOLDER_MIN_LENGTH = 24;

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_";

function randomChars(n: number, alphabet: string): string {
  // randomInt is uniform (no modulo bias), from the crypto RNG.
  let out = "";
  for (let i = 0; i < n; i++) out += alphabet[randomInt(alphabet.length)];
  return out;
}

/**
 * A fresh placeholder for `value`: `[A-Za-z0-9_]` only (safe in headers, URLs, JSON), as many
 * bytes as the value's UTF-8 encoding when that is longer than the minimum (so Content-Length
 * survives substitution), never equal to or containing the value, and not in `taken` (the
 * conversation's other placeholders). A value the prefix itself contains (`ph`, `_`) gets a
 * prefix-less placeholder drawn without the value's first character, which cannot contain it.
 */
export function createPlaceholder(value: string, taken: ReadonlySet<string> = new Set()): string {
  const length = Math.max(PLACEHOLDER_MIN_LENGTH, Buffer.byteLength(value, "utf8"));
  const ok = (p: string) => !taken.has(p) && (value === "" || !p.includes(value));
  if (value === "" || !PLACEHOLDER_PREFIX.includes(value)) {
    for (let attempt = 0; attempt < 64; attempt++) {
      const p = PLACEHOLDER_PREFIX + randomChars(length - PLACEHOLDER_PREFIX.length, ALPHABET);
      if (ok(p)) return p;
    }
  }
  const alphabet = ALPHABET.replace(value[0] ?? "", "");
  for (;;) {
    const p = randomChars(length, alphabet);
    if (ok(p)) return p;
  }
}

/** A random egress id (`eg_` + 32 hex), unrelated to the conversation id. */
export function newEgressId(): string {
  return `eg_${randomBytes(16).toString("hex")}`;
}

/** A parsed host pattern: a name (or `[v6]` literal), whether it is `*.name`, and its port if one was given. */
export interface HostPattern {
  wildcard: boolean;
  name: string;
  port: number | undefined;
}

/** At most this many egress hosts per secret, and egress_allow entries per conversation. */
export const MAX_EGRESS_HOSTS = 32;

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** A DNS name of letters, digits and inner hyphens, at most 253 characters. */
function isName(name: string): boolean {
  return name.length <= 253 && name.split(".").every((l) => LABEL.test(l));
}

/** `[v6]`: a bracketed IPv6 literal of hex digits, colons and dots (an embedded IPv4), one `::` at most. */
function isV6Literal(name: string): boolean {
  const inner = name.slice(1, -1);
  return name.startsWith("[") && name.endsWith("]") && /^[0-9a-f:.]{2,45}$/.test(inner) && inner.includes(":") && inner.split("::").length <= 2;
}

/**
 * Parses `host`, `host:port`, `*.domain` (with an optional port) or `[v6]`/`[v6]:port`,
 * lowercased. Answers the rule broken, for the INVALID_ARGUMENT message, or the pattern.
 * A wildcard needs at least two labels after `*.` (`*.com` would be a whole TLD).
 */
export function parseHostPattern(raw: string): HostPattern | string {
  const text = raw.toLowerCase();
  if (text === "") return "must not be empty";
  if (/[\s/?#@\\]/.test(text) || text.includes("://")) return "must be a host, host:port or *.domain (no scheme, path, userinfo or whitespace)";
  let host = text;
  let port: number | undefined;
  const portMatch = /^(.*?):([0-9]+)$/.exec(text);
  if (portMatch !== null && (!text.startsWith("[") || portMatch[1]!.endsWith("]"))) {
    host = portMatch[1]!;
    port = Number(portMatch[2]);
    if (!Number.isInteger(port) || port < 1 || port > 65535 || portMatch[2]!.length > 5) return "port must be 1-65535";
  }
  if (host.startsWith("[")) {
    return isV6Literal(host) ? { wildcard: false, name: host, port } : "an IPv6 literal must be bracketed, like [2001:db8::1]:443";
  }
  const wildcard = host.startsWith("*.");
  const name = wildcard ? host.slice(2) : host;
  if (name.includes("*")) return "a wildcard must be a leading *. only, like *.example.com";
  if (!isName(name)) return "must be a DNS name of letters, digits, hyphens and dots, or a bracketed IPv6 literal";
  if (wildcard && /^[0-9.]+$/.test(name)) return "a wildcard needs a domain, not an address";
  if (wildcard && name.split(".").length < 2) return "a wildcard must cover a domain of at least two labels, like *.example.com (not *.com)";
  return { wildcard, name, port };
}

/** The pattern in its stored form (lowercased), or throws for an invalid one (validation has run before). */
export function normalizeHostPattern(raw: string): string {
  const parsed = parseHostPattern(raw);
  if (typeof parsed === "string") throw new Error(`invalid host pattern: ${parsed}`);
  return raw.toLowerCase();
}

/**
 * Whether a request to `host`:`port`, as the client wrote it (the CONNECT authority or the
 * Host header; nothing resolved), matches `pattern`. Names compare case-insensitively; `host`
 * alone means ports 443 and 80, `host:port` that port only, `*.domain` any subdomain but not
 * the bare domain. An IPv6 host may come bracketed or not. An invalid pattern matches nothing.
 */
export function matchesHost(pattern: string, host: string, port: number): boolean {
  const p = parseHostPattern(pattern);
  return typeof p !== "string" && patternAdmits(p, host, port);
}

/** `matchesHost` over a pattern parsed once (the gateway keeps its rules parsed). */
export function patternAdmits(p: HostPattern, host: string, port: number): boolean {
  let name = host.toLowerCase();
  if (name.includes(":") && !name.startsWith("[")) name = `[${name}]`;
  const portOk = p.port === undefined ? port === 443 || port === 80 : port === p.port;
  if (!portOk) return false;
  if (!p.wildcard) return name === p.name;
  return name.endsWith(`.${p.name}`) && name.length > p.name.length + 1 && !name.startsWith(".");
}
