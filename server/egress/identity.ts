// What the gateway knows about the conversation behind one sandbox listener: the domain's egress binding itself.
import type { EgressBinding, Substitution } from "../domain/egress-binding.js";

/** The gateway's view of one conversation: who it is (for audit), and what it may reach and substitute. */
export type GatewayIdentity = EgressBinding;

/** One placeholder the conversation's commands hold, with the value it stands for. */
export type GatewaySubstitution = Substitution;
