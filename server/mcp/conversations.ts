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
  add(conversation: OwnedConversation): void;
  /** The conversation, or NOT_FOUND when this session did not start it (unknown and foreign look alike). */
  get(id: string): OwnedConversation;
  delete(id: string): void;
  ids(): string[];
}

/** An empty registry for one MCP session. */
export function createSessionConversations(): SessionConversations {
  const owned = new Map<string, OwnedConversation>();
  return {
    add: (conversation) => void owned.set(conversation.id, conversation),
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
    ids: () => [...owned.keys()],
  };
}
