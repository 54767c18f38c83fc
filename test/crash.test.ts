// Durability: a server killed with SIGKILL mid-stream of writes loses none it acknowledged.
import { afterEach, describe, expect, it } from "vitest";
import { createVeilClient } from "../client/index.js";
import { spawnServer } from "./support/child-server.js";
import { tempDir } from "./support/temp-dir.js";

describe("crash safety", () => {
  const dir = tempDir();
  afterEach(() => dir.cleanup());

  it("keeps every acknowledged write, and every batch whole, across SIGKILL", async () => {
    const first = await spawnServer(dir.path);
    const client = await createVeilClient({ baseUrl: first.url, token: first.token });
    const acknowledged: number[] = [];
    let stop = false;
    let next = 0;
    // Eight writers in flight, each batch two secrets that must land together or not at all.
    const writers = Array.from({ length: 8 }, async () => {
      while (!stop) {
        const n = next++;
        try {
          await client.secrets.setSecrets({ secrets: [{ name: `W${n}_A`, text: `value-${n}` }, { name: `W${n}_B`, text: `value-${n}` }] });
          acknowledged.push(n);
        } catch {
          return; // the server died under this call: not acknowledged
        }
      }
    });
    while (acknowledged.length < 200) await new Promise((r) => setTimeout(r, 10));
    await first.kill9();
    stop = true;
    await Promise.all(writers);
    const attempted = next;

    const second = await spawnServer(dir.path);
    try {
      const again = await createVeilClient({ baseUrl: second.url, token: second.token });
      const stored = new Set<string>();
      let pageToken = "";
      do {
        const page = await again.secrets.listSecrets({ pageSize: 1000, pageToken });
        for (const s of page.secrets) stored.add(s.name);
        pageToken = page.nextPageToken;
      } while (pageToken);
      for (const n of acknowledged) {
        expect(stored.has(`W${n}_A`) && stored.has(`W${n}_B`), `acknowledged write ${n}`).toBe(true);
      }
      for (let n = 0; n < attempted; n++) expect(stored.has(`W${n}_A`), `batch ${n} is whole`).toBe(stored.has(`W${n}_B`));
      const sample = acknowledged[acknowledged.length - 1]!;
      expect((await again.secrets.getSecret({ name: `W${sample}_B` })).text).toBe(`value-${sample}`);
    } finally {
      await second.stop();
    }
  });
});
