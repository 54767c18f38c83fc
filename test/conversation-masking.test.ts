// One masker per conversation output stream: a background job that prints a secret slowly, across later commands, stays masked.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collect, createVeilClient, type VeilClient } from "../client/index.js";
import { startTestServer, type TestServer } from "./support/server.js";

const SLOW = "bg-canary-Slow-9f8e7d6c5b4a3210";
const MASK = "<secret-hidden>";

/** Every 4-character window of `value`: none may survive masking. */
const windows = (value: string): string[] => Array.from({ length: value.length - 3 }, (_, k) => value.slice(k, k + 4));

describe("masking across commands", () => {
  let s: TestServer;
  let veil: VeilClient;

  beforeAll(async () => {
    s = await startTestServer();
    veil = await createVeilClient({ baseUrl: s.url, token: s.token, protocol: "grpc" });
    await veil.secrets.setSecrets({ secrets: [{ name: "SLOW", text: SLOW }] });
  });
  afterAll(async () => {
    await s.close();
    expect(s.logs.join("\n")).not.toContain("canary-Slow");
  });

  it("masks a secret a background job prints one character at a time while later commands run", async () => {
    const { started } = await collect(veil.startConversation({ secrets: ["SLOW"] }));
    const id = started!.conversationId;
    try {
      // 31 characters, one every 40 ms, starting 300 ms in: the value spans several commands' outputs.
      const job = await veil.exec(id, '(sleep 0.3; for ((k = 0; k < ${#SLOW}; k++)); do printf %s "${SLOW:k:1}"; sleep 0.04; done; echo " job-done") &');
      let seen = job.stdoutText;
      // The later commands print on stderr: on stdout their bytes would interleave with the job's, which no masker can undo.
      let commands = 0;
      for (; commands < 40 && !seen.includes("job-done"); commands++) {
        const tick = await veil.exec(id, `sleep 0.1; echo tick-${commands} >&2`);
        expect(tick.stderrText).toBe(`tick-${commands}\n`);
        seen += tick.stdoutText;
      }
      // The value reached the client across several commands' outputs.
      expect(commands).toBeGreaterThan(3);
      expect(seen).toContain("job-done");
      expect(seen).toContain(MASK);
      const shown = seen.replaceAll(MASK, "\0");
      for (const w of windows(SLOW)) expect(shown, `fragment ${w}`).not.toContain(w);
      // Nothing of the job's output besides the secret was lost.
      expect(shown.replaceAll("\0", "")).toMatch(/^(bg-|bg|b)? job-done\n$/);
    } finally {
      await veil.conversations.endConversation({ conversationId: id });
    }
  }, 30_000);

  it("masks a value split between the end of one command's output and the start of the next", async () => {
    const { started } = await collect(veil.startConversation({ secrets: ["SLOW"] }));
    const id = started!.conversationId;
    try {
      // The first command ends holding the value's first half; the background job prints the rest afterwards.
      const first = await veil.exec(id, 'printf %s "${SLOW:0:15}"; (sleep 0.3; printf "%s\\n" "${SLOW:15}") &');
      await new Promise((resolve) => setTimeout(resolve, 600));
      const second = await veil.exec(id, "echo next");
      expect(first.stdoutText).toBe(MASK);
      expect(second.stdoutText).toBe(`${MASK}\nnext\n`);
    } finally {
      await veil.conversations.endConversation({ conversationId: id });
    }
  }, 30_000);
});
