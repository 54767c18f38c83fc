// Who is calling: the identity an authenticated token stands for.

/** A token's role inside its tenant. */
export type Role = "admin" | "agent";

/** The caller of an operation, as established by its bearer token. */
export interface Principal {
  tenant: string;
  role: Role;
  /** Set for agent tokens: the one agent name the token acts as. */
  agent?: string;
  /** Agent tokens minted with allow_network may ask for unrestricted network in conversations. */
  allowNetwork?: boolean;
  tokenId: string;
  /** The bootstrap operator token: admin of `default` that may act on any tenant. */
  operator: boolean;
}

/** The default tenant the operator token administers. */
export const DEFAULT_TENANT = "default";
