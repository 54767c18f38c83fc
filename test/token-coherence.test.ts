// Token records cached per server stay coherent through the store's watch: dropped on change, read through while the watch is down.
import { afterEach, describe, expect, it, vi } from "vitest";
import { VeilError } from "../server/errors.js";
import { createTokens } from "../server/domain/tokens.js";
import type { KvStore, KvWatchHandlers } from "../server/store/kv.js";
import { openMemoryStore } from "../server/store/memory-store.js";

/** A store shared with "another server", whose watch this test can cut (changes then never arrive). */
function cuttableStore() {
  const inner = openMemoryStore();
  let handlers: KvWatchHandlers | undefined;
  let connected = true;
  const store: KvStore = Object.assign(Object.create(inner) as KvStore, {
    watch(prefix: string, h: KvWatchHandlers) {
      handlers = h;
      return inner.watch(prefix, { onChange: (change) => connected && h.onChange(change) });
    },
  });
  return {
    store,
    /** The server that revokes: the same data, its own token registry. */
    other: createTokens(inner),
    cut(reset: boolean) {
      connected = false;
      if (reset) handlers?.onReset?.(false);
    },
    heal() {
      connected = true;
      handlers?.onReset?.(true);
    },
  };
}

const admin = { tenant: "default", role: "admin" as const, tokenId: "tok_op", operator: true };
const refused = (p: Promise<unknown>) => expect(p).rejects.toSatisfy((e) => e instanceof VeilError && e.kind === "unauthenticated" && /revoked/.test(e.message));

describe("token cache coherence across servers", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("drops a cached record the moment another server revokes it", async () => {
    const s = cuttableStore();
    const here = createTokens(s.store);
    const { token, record } = await s.other.create(admin, { tenant: "default", role: "admin", agent: "", ttlSeconds: 0, description: "" });
    await here.authenticate(token);
    await s.other.revoke(admin, record.id);
    await refused(here.authenticate(token));
  });

  it("reads through while the watch is down, and caches again once it is live", async () => {
    const s = cuttableStore();
    const here = createTokens(s.store);
    const { token, record } = await s.other.create(admin, { tenant: "default", role: "admin", agent: "", ttlSeconds: 0, description: "" });
    await here.authenticate(token);
    s.cut(true);
    // The change never reaches this server's watch, yet the next call sees it.
    await s.other.revoke(admin, record.id);
    await refused(here.authenticate(token));
    s.heal();
    const fresh = await s.other.create(admin, { tenant: "default", role: "admin", agent: "", ttlSeconds: 0, description: "" });
    await here.authenticate(fresh.token);
    await s.other.revoke(admin, fresh.record.id);
    await refused(here.authenticate(fresh.token));
  });

  it("trusts a record at most 5 s even when a watch stalls without saying so", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const s = cuttableStore();
    const here = createTokens(s.store);
    const { token, record } = await s.other.create(admin, { tenant: "default", role: "admin", agent: "", ttlSeconds: 0, description: "" });
    await here.authenticate(token);
    s.cut(false);
    await s.other.revoke(admin, record.id);
    // Silently stale (the watch missed it): still served from cache within the bound...
    await expect(here.authenticate(token)).resolves.toMatchObject({ tokenId: record.id });
    vi.advanceTimersByTime(5_001);
    // ...and refused once the bound has passed.
    await refused(here.authenticate(token));
  });
});
