// Veil's MCP server: list_secrets, run_command and end_conversation over Veil's own typed client, so every call meets the same auth, grants, sandbox, egress, masking and audit.
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { Code, ConnectError } from "@connectrpc/connect";
import { z } from "zod";
import { collect, type ConversationEvent, type SecretMeta, type VeilClient, ValueKind, Inject, NetworkMode } from "../../client/index.js";
import { CLIENT_HEADER, clientLabel } from "../rpc/audit.js";
import { fieldEnvName } from "../domain/injection.js";
import { createSessionConversations, type SessionConversations } from "./conversations.js";
import { OUTPUT_CAP_CHARS, refusal, runResult, toolError } from "./output.js";

/** What one MCP session is built from. */
export interface VeilMcpOptions {
  /** Clients that reach the Veil API (a network transport for stdio, the app's router in process for HTTP). */
  client: VeilClient;
  /** Headers every API call carries besides the client name (the bearer token, when the transport does not add it). */
  headers?: Record<string, string>;
  /**
   * In process only: ends a conversation without the API, for when the session's token was
   * revoked or expired meanwhile (EndConversation then answers UNAUTHENTICATED, yet the session's end must still end it).
   */
  endDirectly?: (conversationId: string) => Promise<void>;
  /** Where operational notes go (never a value; stderr for stdio, the server log for HTTP). */
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

/** One MCP session: the protocol server to connect a transport to, and its end. */
export interface VeilMcpSession {
  server: McpServer;
  /** Ends every conversation this session started (idempotent). */
  close(): Promise<void>;
}

const INSTRUCTIONS = `Veil runs shell commands for you with secrets injected as environment variables; you never see a secret's value.
Call list_secrets to learn which secret names you may use. To use one, name it in run_command's "secrets" and reference it in the command as $NAME (for example: curl -H "Authorization: Bearer $GITHUB_TOKEN" https://api.github.com/user).
Every value, and its common encodings, appears in output as <secret-hidden>. Reuse conversation_id to keep the working directory and exported variables, as in one terminal.`;

const secretShape = z.object({
  name: z.string(),
  description: z.string(),
  kind: z.string().describe('"text" (one value) or "fields" (several, one variable each)'),
  variables: z.array(z.string()).describe("environment variables a command sees when the secret is declared"),
  hosts: z.array(z.string()).describe("when not empty: the value is only sent to these hosts, through Veil's gateway; commands see a placeholder"),
});

const runOutput = {
  stdout: z.string(),
  stderr: z.string(),
  exit_code: z.number().int(),
  timed_out: z.boolean(),
  truncated: z.boolean(),
  conversation_id: z.string(),
};

/** Creates the MCP server of one session over Veil's client API. */
export function createVeilMcpSession(options: VeilMcpOptions): VeilMcpSession {
  const server = new McpServer({ name: "veil", version: "0.1.0" }, { instructions: INSTRUCTIONS });
  // Per call: the host's name from `initialize` reaches the audit trail as `mcp:<name>`.
  const callOptions = (signal?: AbortSignal) => {
    const name = clientLabel(server.server.getClientVersion()?.name ?? null).slice(0, 64);
    return { headers: { ...options.headers, [CLIENT_HEADER]: name === "" ? "mcp" : `mcp:${name}` }, ...(signal ? { signal } : {}) };
  };
  const end = async (id: string): Promise<boolean> => {
    try {
      await options.client.conversations.endConversation({ conversationId: id }, callOptions());
      return true;
    } catch (error) {
      if (error instanceof ConnectError && error.code === Code.Unauthenticated && options.endDirectly) {
        return options.endDirectly(id).then(
          () => true,
          () => false,
        );
      }
      // Already gone (idle expiry, server restart): nothing left to end.
      options.log?.("mcp: could not end a conversation at session close", { conversationId: id, code: error instanceof ConnectError ? Code[error.code] : "error" });
      return false;
    }
  };
  const owned = createSessionConversations(async (id) => void (await end(id)));
  registerListSecrets(server, options.client, callOptions);
  registerRunCommand(server, options.client, owned, callOptions);
  registerEndConversation(server, options.client, owned, callOptions);

  let closing: Promise<void> | undefined;
  return {
    server,
    close() {
      closing ??= (async () => {
        const ended = await Promise.all(owned.close().map(end));
        if (ended.length > 0) options.log?.("mcp: session closed, its conversations ended", { conversations: ended.filter(Boolean).length });
      })();
      return closing;
    },
  };
}

type CallOptionsOf = (signal?: AbortSignal) => { headers: Record<string, string>; signal?: AbortSignal };

/** The variables a command sees for a secret: NAME, and NAME_FIELD per field of a fields secret. */
function variablesOf(meta: SecretMeta): string[] {
  return [meta.name, ...meta.fieldNames.map((field) => fieldEnvName(meta.name, field))];
}

function registerListSecrets(server: McpServer, client: VeilClient, callOptions: CallOptionsOf) {
  server.registerTool(
    "list_secrets",
    {
      title: "List usable secrets",
      description:
        "Lists the secrets you may use in run_command: names, descriptions and the environment variables each sets. Never returns a value. " +
        'To use a secret, put its name in run_command\'s "secrets" and reference the variable in the command as $NAME (fields secrets also set $NAME_FIELD per field).',
      outputSchema: { secrets: z.array(secretShape) },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async (extra): Promise<CallToolResult> => {
      try {
        const metas: SecretMeta[] = [];
        let pageToken = "";
        do {
          const page = await client.secrets.listSecrets({ pageSize: 1000, pageToken }, callOptions(extra.signal));
          metas.push(...page.secrets);
          pageToken = page.nextPageToken;
        } while (pageToken !== "");
        const secrets = metas.map((m) => ({
          name: m.name,
          description: m.description,
          // By the enum's own name, so kinds added later ("lookup") read right without a change here.
          kind: (ValueKind[m.kind] ?? "UNSPECIFIED").toLowerCase(),
          variables: variablesOf(m),
          hosts: [...m.egressHosts],
        }));
        const lines = secrets.map(
          (s) =>
            `- ${s.name}${s.description ? `: ${s.description}` : ""} (use ${s.variables.map((v) => `$${v}`).join(", ")}` +
            `${s.hosts.length > 0 ? `; only sent to ${s.hosts.join(", ")}` : ""})`,
        );
        const text =
          secrets.length === 0
            ? "No secrets are available to you."
            : `Secrets you may use (declare the name in run_command's "secrets", reference it as $NAME):\n${lines.join("\n")}`;
        return { content: [{ type: "text", text }], structuredContent: { secrets } };
      } catch (error) {
        return toolError(error);
      }
    },
  );
}

const runInput = {
  command: z
    .string()
    .min(1)
    .describe("Shell (bash) text to run, e.g. 'curl -sS -H \"Authorization: Bearer $GITHUB_TOKEN\" https://api.github.com/user'. Reference secrets as $NAME."),
  secrets: z
    .array(z.string())
    .optional()
    .describe(
      "Secret names to inject (from list_secrets). Only when starting a conversation (no conversation_id): a conversation's secrets are fixed at its start.",
    ),
  timeout_ms: z.number().int().positive().optional().describe("Time limit for this command in milliseconds (default: the server's)."),
  conversation_id: z
    .string()
    .max(128)
    .optional()
    .describe("Continue in this conversation (from an earlier result): same shell, working directory and exported variables. Omit to start a new one."),
};

function registerRunCommand(server: McpServer, client: VeilClient, owned: SessionConversations, callOptions: CallOptionsOf) {
  server.registerTool(
    "run_command",
    {
      title: "Run a shell command with secrets",
      description:
        "Runs a bash command on the Veil server in a sandbox, with the declared secrets set as environment variables, and returns its output with every secret value replaced by <secret-hidden>. " +
        "Without conversation_id it starts a new conversation (a persistent shell) and returns its conversation_id; pass that id to run further commands in the same shell (cd and export persist). " +
        "Network: only through Veil's gateway, to the hosts of the declared secrets. A non-zero exit code or a timeout is a normal result. " +
        `Each of stdout and stderr is cut in the middle beyond ${OUTPUT_CAP_CHARS} characters.`,
      inputSchema: runInput,
      outputSchema: runOutput,
      annotations: { destructiveHint: true, openWorldHint: true },
    },
    async (args, extra): Promise<CallToolResult> => {
      try {
        const secrets = args.secrets ?? [];
        let conversationId = args.conversation_id;
        let events: AsyncIterable<ConversationEvent>;
        if (conversationId === undefined) {
          events = client.startConversation(
            {
              secrets,
              commands: [args.command],
              inject: Inject.DECLARED,
              ...(args.timeout_ms !== undefined ? { timeoutMs: args.timeout_ms } : {}),
              // The session ends it (end_conversation, or when the session closes), not the stream.
              keepOnDisconnect: true,
              // The safe network: nothing but the gateway, which swaps placeholders for values on each secret's own hosts.
              networkMode: NetworkMode.EGRESS,
            },
            callOptions(extra.signal),
          );
          // Owned from the `started` event on, so a failure later in the stream cannot orphan it.
          events = claimStarted(events, owned, (id) => {
            conversationId = id;
          });
        } else {
          const conversation = owned.get(conversationId);
          const missing = secrets.filter((name) => !conversation.secrets.includes(name));
          if (missing.length > 0) {
            return refusal(
              `secrets: ${missing.join(", ")} not in this conversation (its secrets are fixed at its start: ${conversation.secrets.join(", ") || "none"}); omit conversation_id to start a new conversation with them`,
            );
          }
          events = client.run(conversationId, args.command, { ...callOptions(extra.signal), ...(args.timeout_ms !== undefined ? { timeoutMs: args.timeout_ms } : {}) });
        }
        const collected = await collect(events);
        const result = collected.commands[0];
        if (result === undefined || conversationId === undefined) throw new Error("the Veil server ended the stream before the command exited");
        const { structured, text } = runResult(result, conversationId);
        return { content: [{ type: "text", text }], structuredContent: structured };
      } catch (error) {
        // The server forgot it (idle expiry, its end): this session cannot drive it any more either.
        if (args.conversation_id !== undefined && isNotFound(error)) owned.delete(args.conversation_id);
        return toolError(error);
      }
    },
  );
}

/** Passes the events through, registering the conversation with the session as soon as it is announced. */
async function* claimStarted(events: AsyncIterable<ConversationEvent>, owned: SessionConversations, onId: (id: string) => void): AsyncIterable<ConversationEvent> {
  for await (const event of events) {
    if (event.event.case === "started") {
      owned.add({ id: event.event.value.conversationId, secrets: [...event.event.value.secrets] });
      onId(event.event.value.conversationId);
    }
    yield event;
  }
}

function isNotFound(error: unknown): boolean {
  return error instanceof ConnectError && error.code === Code.NotFound;
}

function registerEndConversation(server: McpServer, client: VeilClient, owned: SessionConversations, callOptions: CallOptionsOf) {
  server.registerTool(
    "end_conversation",
    {
      title: "End a conversation",
      description: "Ends a conversation this session started: stops its shell and every process in it, and deletes its working directory.",
      inputSchema: { conversation_id: z.string().max(128).describe("The conversation_id a run_command result gave.") },
      outputSchema: { conversation_id: z.string(), ended: z.boolean() },
      annotations: { destructiveHint: true, idempotentHint: false, openWorldHint: false },
    },
    async (args, extra): Promise<CallToolResult> => {
      try {
        owned.get(args.conversation_id);
        owned.delete(args.conversation_id);
        await client.conversations.endConversation({ conversationId: args.conversation_id }, callOptions(extra.signal));
        return {
          content: [{ type: "text", text: `conversation ${args.conversation_id} ended` }],
          structuredContent: { conversation_id: args.conversation_id, ended: true },
        };
      } catch (error) {
        return toolError(error);
      }
    },
  );
}
