// The store layout version: recorded in the store on first start, checked at every start.
import { VeilError } from "../domain/errors.js";
import type { KvStore } from "./kv.js";

/** The layout this code writes and reads. Bump it (with a migration) when key shapes change. */
export const LAYOUT_VERSION = 1;

/** Where the layout version lives (a decimal string). */
export const LAYOUT_KEY = "sys\0layout";

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

/**
 * Checks the store's layout version and records it when missing: on a fresh store, and on a
 * store from before versions were recorded (whose layout is the current one), written once.
 */
export async function checkLayout(store: KvStore, what = "this data dir"): Promise<number> {
  const raw = await store.get(LAYOUT_KEY);
  if (raw === undefined) {
    await store.write([{ type: "put", key: LAYOUT_KEY, value: new TextEncoder().encode(String(LAYOUT_VERSION)) }]);
    return LAYOUT_VERSION;
  }
  const layout = Number(Buffer.from(raw).toString("utf8"));
  assertLayoutSupported(layout, what);
  return layout;
}
