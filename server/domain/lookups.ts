// Resolving lookup secrets: header expressions from other secrets, the per-tenant cache, failures as FAILED_PRECONDITION.
import { fail, VeilError } from "../errors.js";
import { fetchLookup, LookupFailure, type LookupFetchOptions } from "./lookup-fetch.js";
import type { LookupSpec } from "./lookup-source.js";
import type { Principal } from "./principal.js";
import type { SecretRecord, SecretValue, StoredValue } from "./secret-records.js";
import { parseTemplate, referencedNames, renderTemplate, type TemplatePart } from "./templates.js";
import type { Vault } from "./vault.js";

/** A fetched lookup: its value, and the header secrets' values (never injected, but masked all the same). */
export interface FetchedValue {
  text: string;
  masks: string[];
}

/** Where a stored value sits, for the cache key and the header secrets' layering. */
export interface LookupPlace {
  principal: Principal;
  /** The session the caller asked in (header secrets are layered from it). */
  session: string;
  record: SecretRecord;
  version: number;
  /** The request field errors name: `secrets[0]`, `env[URL]`, `name`. */
  where: string;
}

/** At most this many fetched values are cached at once (the oldest go first). */
const MAX_CACHED = 10_000;

/** Creates the resolver. Its cache lives in this process only, keyed by tenant, session, name and version. */
export function createLookups(deps: { vault: Vault; fetch: LookupFetchOptions }) {
  const cache = new Map<string, { expires: number; value: Promise<FetchedValue> }>();

  /** Header values with their expressions resolved, and the values to mask. */
  async function renderHeaders(place: LookupPlace, spec: LookupSpec): Promise<{ headers: Record<string, string>; masks: string[] }> {
    const name = place.record.name;
    const failed = (why: string) => fail.precondition(`${place.where}: lookup for ${name} failed: ${why}`);
    const parsed: [string, TemplatePart[]][] = Object.entries(spec.headers).map(([header, value]) => [header, parseTemplate(value, `header ${header}`)]);
    const names = [...new Set(parsed.flatMap(([, parts]) => referencedNames(parts)))];
    // The lookup's author (an admin: only admins write secrets) chose these secrets; they go to the upstream only,
    // never into a command, so the calling agent needs no grant on them. Same tenant, same session layering.
    const author: Principal = { tenant: place.principal.tenant, role: "admin", tokenId: place.principal.tokenId, operator: false };
    const values = new Map<string, SecretValue>();
    for (const ref of names) {
      let stored: StoredValue;
      try {
        stored = (await deps.vault.resolve(author, place.session, [ref], () => "header")).get(ref)!.value;
      } catch (error) {
        if (error instanceof VeilError && error.kind === "not_found") throw failed(`a header names ${ref}, which is not a secret of this tenant`);
        throw error;
      }
      if (stored.kind === "lookup") throw failed(`a header names ${ref}, which is itself a lookup (header secrets must be stored values)`);
      values.set(ref, stored);
    }
    const headers: Record<string, string> = {};
    try {
      for (const [header, parts] of parsed) headers[header] = renderTemplate(parts, (n) => values.get(n)!, `header ${header}`);
    } catch (error) {
      if (error instanceof VeilError) throw failed(error.message);
      throw error;
    }
    const masks = [...values.values()].flatMap((v) => (v.kind === "text" ? [v.text] : [...Object.values(v.fields), JSON.stringify(v.fields)]));
    return { headers, masks };
  }

  async function fetchNow(place: LookupPlace, spec: LookupSpec): Promise<FetchedValue> {
    const { headers, masks } = await renderHeaders(place, spec);
    try {
      return { text: await fetchLookup(spec, headers, deps.fetch), masks };
    } catch (error) {
      if (error instanceof LookupFailure) throw fail.precondition(`${place.where}: lookup for ${place.record.name} failed: ${error.message}`);
      throw error;
    }
  }

  function remember(key: string, value: Promise<FetchedValue>, ttlSeconds: number) {
    // In flight: concurrent starts share one request; the TTL runs from when the answer came.
    cache.set(key, { expires: Number.POSITIVE_INFINITY, value });
    value.then(
      () => {
        const entry = cache.get(key);
        if (entry?.value === value) entry.expires = Date.now() + ttlSeconds * 1000;
      },
      () => {
        if (cache.get(key)?.value === value) cache.delete(key);
      },
    );
    while (cache.size > MAX_CACHED) cache.delete(cache.keys().next().value!);
  }

  /** The value of a lookup secret: from the cache while fresh (at most `ttl_seconds`), else fetched now. */
  function fetchValue(place: LookupPlace, spec: LookupSpec): Promise<FetchedValue> {
    if (spec.ttlSeconds === 0) return fetchNow(place, spec);
    const { record } = place;
    const key = [place.principal.tenant, place.session, record.session, record.name, place.version].join("\0");
    const hit = cache.get(key);
    if (hit !== undefined && hit.expires > Date.now()) return hit.value;
    const value = fetchNow(place, spec);
    remember(key, value, spec.ttlSeconds);
    return value;
  }

  return {
    fetch: fetchValue,

    /** A stored value made usable: a lookup fetched (its value as text), anything else as it is. */
    async open(place: LookupPlace, stored: StoredValue): Promise<{ value: SecretValue; masks: string[] }> {
      if (stored.kind !== "lookup") return { value: stored, masks: [] };
      const fetched = await fetchValue(place, stored.lookup);
      return { value: { kind: "text", text: fetched.text }, masks: fetched.masks };
    },
  };
}

/** The lookup resolver. */
export type Lookups = ReturnType<typeof createLookups>;
