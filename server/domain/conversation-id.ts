// Conversation ids name the server that runs the conversation (`conv_<serverId>_<hex>`), so any server can route to it without a store write.
import { randomBytes } from "node:crypto";

/** A random server id for a server started without `--server-id`: 10 hex digits. */
export function randomServerId(): string {
  return randomBytes(5).toString("hex");
}

/** A fresh id for a conversation run by `serverId` (none: the old single-server form `conv_<hex>`). */
export function newConversationId(serverId?: string): string {
  const random = randomBytes(12).toString("hex");
  return serverId === undefined ? `conv_${random}` : `conv_${serverId}_${random}`;
}

const ID = /^conv_(?:([a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?)_)?[0-9a-f]{24}$/;

/** The server a conversation id names; undefined for an id naming none (the old form, or not a conversation id at all). */
export function serverOfConversation(id: string): string | undefined {
  return ID.exec(id)?.[1];
}
