// The store layout version: recorded in the store on first start, checked (and migrated forward) at every start.
import { migrateSettingsApiKeys } from "./layout-2.js";
import { VeilError } from "./errors.js";
import type { KvStore } from "./store/kv.js";

/** The layout this code writes and reads. Bump it (with a migration) when key shapes change. */
export const LAYOUT_VERSION = 2;

/** Where the layout version lives (a decimal string). */
export const LAYOUT_KEY = "sys\0layout";

/**
 * Migrations by the layout they start from; each takes the store to the next layout and is
 * safe to run again (a crash before the layout is marked reruns it at the next start).
 * 1 -> 2: settings' API key becomes its own sealed value, so every sealed thing is one whole store value.
 */
const MIGRATIONS: Record<number, (store: KvStore) => Promise<unknown>> = {
  1: migrateSettingsApiKeys,
};

/** Refuses data written by a newer Veil: reading it with older code could misread or damage it. */
export function assertLayoutSupported(layout: number, what: string): void {
  if (!Number.isSafeInteger(layout) || layout < 1) throw new VeilError("failed_precondition", `${what}: the store layout version is not a positive whole number`);
  if (layout > LAYOUT_VERSION) {
    throw new VeilError(
      "failed_precondition",
      `${what} was written by a newer Veil (layout ${layout}); this server understands up to ${LAYOUT_VERSION}: run the newer Veil`,
    );
  }
}

/** The layout of a store with no layout key: a fresh store is the current layout, data from before layouts were recorded is layout 1. */
async function unrecordedLayout(store: KvStore): Promise<number> {
  for await (const _entry of store.scan({ limit: 1 })) return 1;
  return LAYOUT_VERSION;
}

async function mark(store: KvStore, layout: number) {
  await store.write([{ type: "put", key: LAYOUT_KEY, value: new TextEncoder().encode(String(layout)) }]);
}

/**
 * Checks the store's layout version, migrates an older one forward step by step (each step
 * marked once done), and records it when missing. Returns the layout the store is now at.
 */
export async function checkLayout(store: KvStore, what = "this data dir"): Promise<number> {
  const raw = await store.get(LAYOUT_KEY);
  const recorded = raw === undefined ? undefined : Number(Buffer.from(raw).toString("utf8"));
  let layout = recorded ?? (await unrecordedLayout(store));
  assertLayoutSupported(layout, what);
  if (recorded === undefined && layout === LAYOUT_VERSION) await mark(store, layout);
  while (layout < LAYOUT_VERSION) {
    await MIGRATIONS[layout]!(store);
    layout++;
    await mark(store, layout);
  }
  return layout;
}
