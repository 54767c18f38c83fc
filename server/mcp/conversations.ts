// The conversations one MCP session started: only these can it drive, and closing the session ends them.
import { Code, ConnectError } from "@connectrpc/connect";

/** What a session remembers of a conversation it started. */
export interface OwnedConversation {
  id: string;
  /** The secret names in force (from `started`): fixed for the conversation's life. */
  secrets: readonly string[];
}

/** A session's conversations. */
export interface SessionConversations {
  /** Claims a conversation just started; once the session closed, it is ended at once instead. */
  add(conversation: OwnedConversation): void;
  /** The conversation, or NOT_FOUND when this session did not start it (unknown and foreign look alike). */
  get(id: string): OwnedConversation;
  delete(id: string): void;
  /** Closes the registry: answers the ids still owned, and ends whatever starts from now on. */
  close(): string[];
}

/** An empty registry for one MCP session; `end` ends a conversation a closed session still receives. */
export function createSessionConversations(end: (id: string) => Promise<void>): SessionConversations {
  const owned = new Map<string, OwnedConversation>();
  let closed = false;
  return {
    add(conversation) {
      // A start that was under way when the session closed must not outlive it.
      if (closed) void end(conversation.id);
      else owned.set(conversation.id, conversation);
    },
    get(id) {
      const conversation = owned.get(id);
      if (conversation === undefined) {
        throw new ConnectError(
          `conversation_id: no conversation ${JSON.stringify(id)} in this MCP session (it ended, or another session started it); omit conversation_id to start a new one`,
          Code.NotFound,
        );
      }
      return conversation;
    },
    delete: (id) => void owned.delete(id),
    close() {
      closed = true;
      const ids = [...owned.keys()];
      owned.clear();
      return ids;
    },
  };
}
