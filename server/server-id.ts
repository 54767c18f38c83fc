// What a server id may look like: read by the config, by conversation ids and by peers' proofs.

/** A server id: 1-32 of lowercase letters, digits and inner hyphens (no `_`: it separates a conversation id's parts). */
export const SERVER_ID_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$/;
