// Key rotation over the network: rotate under reads and writes, SIGKILL mid-way, restart, finish, retire.
import { createHash } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { collect, createVeilClient, type VeilClient } from "../client/index.js";
import { spawnServer } from "./support/child-server.js";
import { tempDir } from "./support/temp-dir.js";

const secretValue = (i: number) => `rot-canary-${i}-${"x".repeat(i % 17)}`;

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await probe();
    if (got !== undefined) return got;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("key rotation across a crash", () => {
  const dir = tempDir();
  afterAll(() => dir.cleanup());

  it("moves every value to the new generation, survives SIGKILL mid-way, and keeps every value intact", async () => {
    const COUNT = 1500;
    const first = await spawnServer(dir.path, { VEIL_REENCRYPT_RATE: "500" });
    const client = await createVeilClient({ baseUrl: first.url, token: first.token });
    for (let start = 0; start < COUNT; start += 500) {
      await client.secrets.setSecrets({ secrets: Array.from({ length: 500 }, (_, k) => ({ name: `S${start + k}`, text: secretValue(start + k) })) });
    }
    await client.settings.updateSettings({ settings: { llm: { apiKey: "sk-rot-canary-llm-key" }, options: {} } });

    // Live traffic during the rotation: reads must never fail; acknowledged writes must survive.
    let stop = false;
    const acknowledged: number[] = [];
    let readFailures = 0;
    const readers = Array.from({ length: 3 }, async () => {
      while (!stop) {
        const i = Math.floor(Math.random() * COUNT);
        const got = await client.secrets.getSecret({ name: `S${i}` }).catch(() => undefined);
        if (stop) return;
        if (got === undefined || got.text !== secretValue(i)) readFailures++;
      }
    });
    let n = 0;
    const writer = (async () => {
      while (!stop) {
        const i = n++;
        const ok = await client.secrets.setSecrets({ secrets: [{ name: `NEW${i}`, text: secretValue(i) }] }).then(() => true, () => false);
        if (ok) acknowledged.push(i);
      }
    })();

    const rotated = await client.keys.rotateKeys({ wait: false });
    expect(rotated.status?.activeGeneration).toBe(2);
    await waitFor("re-encryption to be under way", async () => {
      const { status } = await client.keys.getKeyStatus({});
      return status!.valuesMoved >= 200n && status!.valuesRemaining > 0n ? status : undefined;
    });
    expect(readFailures).toBe(0);
    await first.kill9();
    stop = true;
    await Promise.all([...readers, writer]);

    const second = await spawnServer(dir.path);
    try {
      const again = await createVeilClient({ baseUrl: second.url, token: second.token });
      const done = await waitFor("re-encryption to finish after the restart", async () => {
        const { status } = await again.keys.getKeyStatus({});
        return !status!.reencrypting && status!.valuesRemaining === 0n ? status : undefined;
      });
      expect(done.activeGeneration).toBe(2);
      expect((await again.keys.retireKeys({})).retired).toEqual([1]);
      await checkEverything(again, COUNT, acknowledged);
    } finally {
      await second.stop();
    }

    // Generation 1 is gone from the keyring, and nothing needs it: the server starts and reads.
    const third = await spawnServer(dir.path);
    try {
      const last = await createVeilClient({ baseUrl: third.url, token: third.token });
      expect((await last.keys.getKeyStatus({})).status?.generations).toEqual([2]);
      await checkEverything(last, COUNT, acknowledged);
    } finally {
      await third.stop();
    }
  }, 180_000);
});

async function checkEverything(client: VeilClient, count: number, acknowledged: number[]) {
  const expected = [...Array.from({ length: count }, (_, i) => [`S${i}`, secretValue(i)]), ...acknowledged.map((i) => [`NEW${i}`, secretValue(i)])];
  for (let start = 0; start < expected.length; start += 64) {
    const slice = expected.slice(start, start + 64);
    const got = await Promise.all(slice.map(([name]) => client.secrets.getSecret({ name: name! })));
    expect(got.map((g) => g.text)).toEqual(slice.map(([, value]) => value));
  }
  const run = await collect(
    client.startConversation({ injectSettings: true, commands: ['printf %s "$LLM_API_KEY" | sha256sum | cut -c1-64'], endWhenDone: true }),
  );
  expect(run.commands[0]?.stdoutText.trim()).toBe(createHash("sha256").update("sk-rot-canary-llm-key").digest("hex"));
}
