// A command's stdin and signals over the wire (RunCommand stdin, SendInput, SignalCommand), in bubblewrap and without it.
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CommandResult, type ConversationEvent, Outcome, Role, Stream, type VeilClient } from "../client/index.js";
import { detectSandbox } from "../server/domain/executor.js";
import { startTestApp, type TestApp } from "./support/app.js";
import { expectCode } from "./support/expect-code.js";

const hasBwrap = (await detectSandbox("required")).kind === "bubblewrap";
const CANARY = "canary-INPUT-3e81c0d9";
const bytes = (text: string) => new TextEncoder().encode(text);

/** Runs `command` with stdin in a new conversation; `drive` gets each event and may send input or signals. */
async function runWithInput(
  veil: VeilClient,
  command: string,
  drive: (event: ConversationEvent["event"], ids: { conversationId: string; commandId: string }, stdout: string) => Promise<void>,
  conversationId?: string,
): Promise<CommandResult & { conversationId: string }> {
  let id = conversationId;
  if (id === undefined) {
    for await (const { event } of veil.startConversation({ secrets: ["INPUT_KEY"] })) if (event.case === "started") id = event.value.conversationId;
  }
  let commandId = "";
  let stdout = "";
  let stderr = "";
  let result: (CommandResult & { conversationId: string }) | undefined;
  // Read to the stream's end: leaving it early would drop the call, which ends the conversation.
  for await (const { event } of veil.conversations.runCommand({ conversationId: id!, command, stdin: true, timeoutMs: 20_000 })) {
    if (event.case === "commandStarted") commandId = event.value.commandId;
    if (event.case === "output") {
      const text = new TextDecoder().decode(event.value.data);
      if (event.value.stream === Stream.STDERR) stderr += text;
      else stdout += text;
    }
    if (event.case === "commandExited") {
      const e = event.value;
      result = { conversationId: id!, commandId, command, stdout: bytes(stdout), stderr: bytes(stderr), stdoutText: stdout, stderrText: stderr, exitCode: e.exitCode, durationMs: 0, timedOut: e.timedOut, truncated: e.truncated, limit: e.limit };
      continue;
    }
    await drive(event, { conversationId: id!, commandId }, stdout);
  }
  if (result === undefined) throw new Error("the stream ended before the command exited");
  return result;
}

for (const mode of [
  { name: "in bubblewrap", flags: [], skip: !hasBwrap },
  { name: "without a sandbox", flags: ["--sandbox", "off"], skip: false },
]) {
  describe.skipIf(mode.skip)(`command input and signals ${mode.name}${mode.skip ? " (skipped: bubblewrap is not usable here)" : ""}`, () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await startTestApp({ extraFlags: mode.flags });
      await t.admin.secrets.setSecrets({ secrets: [{ name: "INPUT_KEY", text: CANARY }] });
    });
    afterAll(async () => {
      expect(t.logs.join("\n")).not.toContain(CANARY);
      await t.close();
    });

    it("feeds stdin in pieces until eof; a later stdin command gets only its own input; others still read nothing", async () => {
      const first = await runWithInput(t.admin, "head -c 5; echo '|'; wc -c", async (event, ids) => {
        if (event.case !== "commandStarted") return;
        await t.admin.conversations.sendInput({ ...ids, data: bytes("hello wor") });
        await t.admin.conversations.sendInput({ ...ids, data: bytes(`ld ${CANARY}`), eof: true });
      });
      expect(first).toMatchObject({ exitCode: 0, stdoutText: `hello|\n${" world ".length + CANARY.length}\n` });
      // Exits before reading all: the rest is dropped, never seen by the next command.
      const short = await runWithInput(
        t.admin,
        "head -c 2",
        async (event, ids) => {
          if (event.case === "commandStarted") { await t.admin.conversations.sendInput({ ...ids, data: bytes("abcdef") }); }
        },
        first.conversationId,
      );
      expect(short.stdoutText).toBe("ab");
      const next = await runWithInput(
        t.admin,
        'cat; echo "[$INPUT_KEY]"',
        async (event, ids) => {
          if (event.case === "commandStarted") await t.admin.conversations.sendInput({ ...ids, data: bytes(`z ${CANARY}\n`), eof: true });
        },
        first.conversationId,
      );
      // Output is masked as always, input echoed back included.
      expect(next.stdoutText).toBe("z <secret-hidden>\n[<secret-hidden>]\n");
      const plain = await t.admin.exec(first.conversationId, "cat; echo rc=$?", { timeoutMs: 10_000 });
      expect(plain.stdoutText).toBe("rc=0\n");
    });

    // "ready" comes from the process that then sleeps: a signal sent between two simple commands
    // of a list could reach only the shell, which may still start the next one.
    it("SIGINT reaches the command: a trap runs; an untrapped command dies of it (130) and the conversation goes on", async () => {
      let conversationId = "";
      const trapped = await runWithInput(t.admin, "trap 'echo got-int; trap - INT; exit 7' INT; echo ready; while :; do sleep 0.1; done", async (event, ids, stdout) => {
        conversationId = ids.conversationId;
        if (event.case === "output" && stdout.includes("ready")) await t.admin.conversations.signalCommand({ ...ids, signal: "SIGINT" });
      });
      expect(trapped).toMatchObject({ exitCode: 7, stdoutText: "ready\ngot-int\n" });
      await t.admin.exec(conversationId, "mkdir -p sub && cd sub && export KEPT=yes", { timeoutMs: 10_000 });
      const dies = await runWithInput(
        t.admin,
        "sh -c 'echo ready; exec sleep 30'",
        async (event, ids, stdout) => {
          if (event.case === "output" && stdout.includes("ready")) await t.admin.conversations.signalCommand({ ...ids, signal: "SIGINT" });
        },
        conversationId,
      );
      expect(dies.exitCode).toBe(130);
      // Like a terminal after Ctrl-C: the next command runs, in the same folder with the same exports.
      const after = await t.admin.exec(conversationId, 'echo still here $KEPT "$(basename "$PWD")"', { timeoutMs: 10_000 });
      expect(after.stdoutText).toBe("still here yes sub\n");
      const term = await runWithInput(
        t.admin,
        "sh -c 'echo ready; exec sleep 30'",
        async (event, ids, stdout) => {
          if (event.case === "output" && stdout.includes("ready")) await t.admin.conversations.signalCommand({ ...ids, signal: "SIGTERM" });
        },
        conversationId,
      );
      expect(term.exitCode).toBe(143);
    });

    it("bounds unread input (RESOURCE_EXHAUSTED), and refuses wrong ids, commands without stdin, bad signals and other agents", async () => {
      let exhausted = false;
      const result = await runWithInput(t.admin, "sh -c 'echo ready; exec sleep 30'", async (event, ids, stdout) => {
        if (!(event.case === "output" && stdout.includes("ready"))) return;
        const chunk = new Uint8Array(64 * 1024);
        for (let i = 0; i < 64 && !exhausted; i++) {
          await t.admin.conversations.sendInput({ ...ids, data: chunk }).catch((error: unknown) => {
            expect(error).toMatchObject({ code: Code.ResourceExhausted, rawMessage: expect.stringMatching(/^data: cmd_\d+ has not read the input sent so far/) });
            exhausted = true;
          });
        }
        await expectCode(t.admin.conversations.sendInput({ ...ids, commandId: "cmd_99", data: bytes("x") }), Code.FailedPrecondition, /command_id: cmd_99 is not running/);
        await expectCode(t.admin.conversations.sendInput({ ...ids, data: new Uint8Array(64 * 1024 + 1) }), Code.InvalidArgument, /data: must be at most 64 KiB/);
        await expectCode(t.admin.conversations.signalCommand({ ...ids, signal: "SIGSTOP" }), Code.InvalidArgument, /signal: must be one of SIGINT/);
        const other = (await t.admin.tokens.createToken({ role: Role.AGENT, agent: "other" })).token;
        await expectCode(t.as(other).conversations.signalCommand({ ...ids, signal: "SIGKILL" }), Code.NotFound);
        await t.admin.conversations.signalCommand({ ...ids, signal: "SIGKILL" });
      });
      expect(exhausted).toBe(true);
      expect(result.exitCode).toBe(137);
      const started = await t.admin.exec(result.conversationId, "true", { timeoutMs: 10_000 });
      await expectCode(t.admin.conversations.sendInput({ conversationId: result.conversationId, commandId: started.commandId, data: bytes("x") }), Code.FailedPrecondition);
      const audit = await t.admin.audit.listAuditEvents({ action: "conversation.signal" });
      expect(audit.events.map((e) => [e.outcome, e.conversationId])).toContainEqual([Outcome.OK, result.conversationId]);
      const inputs = await t.admin.audit.listAuditEvents({ action: "conversation.input" });
      expect(inputs.events.length).toBeGreaterThan(0);
    });

    it("accepts a late eof to a stdin command that has just exited, and refuses late data naming why", async () => {
      // The command ends without reading; the client's stdin ends after that (as `veil run < /dev/null` races).
      const result = await runWithInput(t.admin, "echo done", async () => {});
      const ids = { conversationId: result.conversationId, commandId: result.commandId };
      await t.admin.conversations.sendInput({ ...ids, data: new Uint8Array(0), eof: true });
      await expectCode(t.admin.conversations.sendInput({ ...ids, data: bytes("late") }), Code.FailedPrecondition, /command_id: cmd_\d+ has ended; its input is closed/);
      const inputs = await t.admin.audit.listAuditEvents({ action: "conversation.input" });
      expect(inputs.events.filter((e) => e.conversationId === result.conversationId).map((e) => [e.outcome, e.detail])).toEqual(
        expect.arrayContaining([
          [Outcome.OK, `command=${result.commandId} bytes=0 eof`],
          [Outcome.FAILED, "failed_precondition"],
        ]),
      );
    });
  });
}
