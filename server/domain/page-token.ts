// Opaque page tokens and the scan that fills one page of a prefix listing.
import type { KvStore } from "../store/kv.js";
import { fail } from "../errors.js";

/** Upper bound of page_size; 0 means the default. */
export const MAX_PAGE_SIZE = 1000;
export const DEFAULT_PAGE_SIZE = 100;

interface TokenBody {
  /** Last key suffix returned. */
  a: string;
  /** The name prefix of the listing, so a token cannot be replayed on another listing. */
  p: string;
}

function encodeToken(body: TokenBody): string {
  return Buffer.from(JSON.stringify(body)).toString("base64url");
}

function decodeToken(token: string, namePrefix: string): string {
  try {
    const body = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as TokenBody;
    if (typeof body.a === "string" && body.p === namePrefix) return body.a;
  } catch {
    // fall through to the error below
  }
  throw fail.invalid("page_token: not a token returned by this listing (same name_prefix required)");
}

/**
 * Scans `keyPrefix + namePrefix...` in key order after the token's position and
 * keeps what `accept` maps to an item, until a page is full.
 */
export async function paginate<T>(
  store: KvStore,
  keyPrefix: string,
  options: { pageSize: number; pageToken: string; namePrefix: string; from?: string; to?: string },
  accept: (value: Uint8Array, suffix: string) => T | undefined,
): Promise<{ items: T[]; nextPageToken: string }> {
  const pageSize = options.pageSize === 0 ? DEFAULT_PAGE_SIZE : Math.min(options.pageSize, MAX_PAGE_SIZE);
  const after = options.pageToken === "" ? undefined : decodeToken(options.pageToken, options.namePrefix);
  const start = keyPrefix + options.namePrefix;
  // `from`/`to` narrow the scan itself (time-ordered keys), not just what is kept.
  const range = after !== undefined ? { gt: keyPrefix + after } : { gte: options.from !== undefined ? keyPrefix + options.from : start };
  const end = options.to !== undefined ? keyPrefix + options.to : `${start}\uffff`;
  const items: T[] = [];
  let last = "";
  for await (const [key, value] of store.scan({ ...range, lt: end })) {
    const suffix = key.slice(keyPrefix.length);
    if (items.length === pageSize) return { items, nextPageToken: encodeToken({ a: last, p: options.namePrefix }) };
    const item = accept(value, suffix);
    if (item !== undefined) {
      items.push(item);
      last = suffix;
    }
  }
  return { items, nextPageToken: "" };
}
