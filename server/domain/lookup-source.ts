// A lookup source's shape: what is stored (sealed) for a VALUE_KIND_LOOKUP secret, its credential-free summary, JSON pointers.

/** Everything needed to fetch a lookup secret; stored sealed like a value (headers carry credentials). */
export interface LookupSpec {
  url: string;
  method: "GET" | "POST";
  /** Header values may hold `{{ secrets.NAME[.FIELD] }}` expressions. */
  headers: Record<string, string>;
  /** RFC 6901; "" = the whole body as text. */
  jsonPointer: string;
  /** 0 = never cached. */
  ttlSeconds: number;
  timeoutMs: number;
}

/** What may be shown about a lookup (kept in the clear on the record): no headers, no URL path or query. */
export interface LookupSummary {
  method: string;
  origin: string;
  jsonPointer: string;
  ttlSeconds: number;
  timeoutMs: number;
}

/** The defaults and bounds of a lookup, in one place. */
export const LOOKUP_LIMITS = {
  defaultTimeoutMs: 5_000,
  maxTimeoutMs: 30_000,
  maxTtlSeconds: 86_400,
  /** The value limit: a response body larger than this fails the lookup. */
  maxResponseBytes: 64 * 1024,
  maxHeaders: 32,
} as const;

/** The summary of a spec: the URL's origin only (its path and query can hold keys). */
export function summarize(spec: LookupSpec): LookupSummary {
  return { method: spec.method, origin: new URL(spec.url).origin, jsonPointer: spec.jsonPointer, ttlSeconds: spec.ttlSeconds, timeoutMs: spec.timeoutMs };
}

/** The reference tokens of an RFC 6901 pointer ("" = the whole document), or undefined when it is not one. */
export function pointerTokens(pointer: string): string[] | undefined {
  if (pointer === "") return [];
  if (!pointer.startsWith("/") || /~[^01]|~$/.test(pointer)) return undefined;
  return pointer
    .slice(1)
    .split("/")
    .map((t) => t.replaceAll("~1", "/").replaceAll("~0", "~"));
}

/** What a pointer selects in a parsed JSON document: the value, or "missing". */
export function selectPointer(document: unknown, tokens: readonly string[]): { found: true; value: unknown } | { found: false } {
  let at: unknown = document;
  for (const token of tokens) {
    if (Array.isArray(at)) {
      if (!/^(0|[1-9][0-9]*)$/.test(token) || Number(token) >= at.length) return { found: false };
      at = at[Number(token)];
    } else if (typeof at === "object" && at !== null && Object.hasOwn(at, token)) {
      at = (at as Record<string, unknown>)[token];
    } else {
      return { found: false };
    }
  }
  return { found: true, value: at };
}
