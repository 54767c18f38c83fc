// What the gateway knows about the conversation behind one sandbox listener (mirrors the domain's EgressBinding).

/** One placeholder the conversation's commands hold, with the value it stands for. */
export interface GatewaySubstitution {
  /** What the sandbox holds: swapped for `value` only in requests to `hosts`. */
  readonly placeholder: string;
  readonly value: string;
  /** The secret's name: for audit and refusal messages (never the value). */
  readonly secret: string;
  /** The secret's `egress_hosts` rules (`host`, `host:port`, `*.domain`). */
  readonly hosts: readonly string[];
  /** `egress_body`: substitute in request bodies too, not just the target and headers. */
  readonly body: boolean;
}

/** The gateway's view of one conversation: who it is (for audit), and what it may reach and substitute. */
export interface GatewayIdentity {
  readonly egressId: string;
  readonly conversationId: string;
  readonly tenant: string;
  readonly agent: string;
  readonly tokenId: string;
  readonly networkMode: string;
  /** `egress_allow`: hosts reachable without substitution. */
  readonly allow: readonly string[];
  readonly substitutions: readonly GatewaySubstitution[];
}
