// Finding stale blobs for rotation: walks the barrier's sealed families page by page, reading only blob headers.
import { setImmediate as yieldToLoop } from "node:timers/promises";
import { fail } from "../errors.js";
import type { KvStore } from "../store/kv.js";
import { familyRange, type SealedFamily } from "./barrier.js";
import { blobGeneration } from "./blob.js";
import type { Keyring } from "./keyring.js";

/** One sealed store value: its path and its blob. */
export type SealedEntry = [path: string, blob: Uint8Array];

/** Stored values read per scan page: short scans keep no iterator (or snapshot) open for long. */
export const PAGE = 512;

/** Names a stored value in logs and errors (its path with "/" for the separators, never its value). */
export function where(family: SealedFamily, path: string): string {
  return `${family.name} at ${path.replaceAll("\0", "/")}`;
}

/** The generation a stored value was sealed under; an unreadable header is DATA_LOSS naming the path. */
export function generationOf(family: SealedFamily, path: string, blob: Uint8Array): number {
  try {
    return blobGeneration(blob);
  } catch (cause) {
    throw fail.dataLoss(`key rotation: cannot read the key generation of ${where(family, path)}`, cause);
  }
}

/** Whether a stored value still needs re-sealing. */
export function isStale(family: SealedFamily, [path, blob]: SealedEntry, active: number): boolean {
  return generationOf(family, path, blob) !== active;
}

/** Reads one page of a family, after `cursor`. */
async function readPage(store: KvStore, family: SealedFamily, cursor: string | undefined): Promise<SealedEntry[]> {
  const page: SealedEntry[] = [];
  const bounds = familyRange(family);
  const range = cursor === undefined ? { gte: bounds.gte } : { gt: cursor };
  for await (const entry of store.scan({ ...range, lt: bounds.lt, limit: PAGE })) page.push(entry);
  return page;
}

/** Walks every family page by page; each page is handed over before the next one is read. */
export async function* pages(store: KvStore, families: readonly SealedFamily[], signal?: AbortSignal): AsyncGenerator<[SealedFamily, SealedEntry[]]> {
  for (const family of families) {
    let cursor: string | undefined;
    for (;;) {
      signal?.throwIfAborted();
      const page = await readPage(store, family, cursor);
      if (page.length === 0) break;
      yield [family, page];
      if (page.length < PAGE) break;
      cursor = page[page.length - 1]![0];
    }
  }
}

/**
 * The cheap pass: counts stored values under an older generation, and refuses values under
 * a generation the keyring no longer has (they could never be opened again).
 */
export async function countStale(store: KvStore, keyring: Keyring, families: readonly SealedFamily[], signal?: AbortSignal): Promise<number> {
  const active = keyring.activeGeneration;
  const held = new Set(keyring.generations);
  const missing = new Map<number, number>();
  let stale = 0;
  for await (const [family, page] of pages(store, families, signal)) {
    for (const [path, blob] of page) {
      const g = generationOf(family, path, blob);
      if (!held.has(g)) missing.set(g, (missing.get(g) ?? 0) + 1);
      if (g !== active) stale++;
    }
    await yieldToLoop();
  }
  if (missing.size > 0) {
    const list = [...missing].sort(([a], [b]) => a - b).map(([g, n]) => `generation ${g} (${n} blob${n === 1 ? "" : "s"})`);
    throw fail.precondition(
      `stored ciphertext is sealed under a key generation that is not in the keyring: ${list.join(", ")}; ` +
        `the keyring holds generations ${[...held].join(", ")}. Restore the keyring (or data dir) that still has it`,
    );
  }
  return stale;
}
