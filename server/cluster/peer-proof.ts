// The peer proof a server adds to a call it forwards: an HMAC, under a key derived from the master key, over its id, the time and the call.
import { createHmac, hkdfSync, timingSafeEqual } from "node:crypto";
import { SERVER_ID_PATTERN } from "../server-id.js";

/** The header that carries it. */
export const PEER_HEADER = "x-veil-peer";

/** How far a proof's time may be from ours (clock skew plus transit); older proofs are refused. */
const MAX_SKEW_MS = 60_000;

/** What a call is bound to: a proof for one procedure and conversation is worthless for another. */
export interface PeerCall {
  procedure: string;
  conversationId: string;
}

/** A proof that does not verify: the caller is no server of this store (or its key differs). */
export class PeerProofError extends Error {
  override readonly name = "PeerProofError";
}

/** Signs and checks peer proofs for server `selfId`. */
export interface PeerProof {
  /** The header value for a call this server forwards. */
  sign(call: PeerCall, now?: number): string;
  /** The forwarding server's id, or PeerProofError when the proof is malformed, stale, for another call, or forged. */
  verify(header: string, call: PeerCall, now?: number): string;
}

/** Only holders of the master key (the servers of this store) can derive this key. */
function peerKey(masterKey: Uint8Array): Buffer {
  return Buffer.from(hkdfSync("sha256", masterKey, new TextEncoder().encode("veil/v1"), new TextEncoder().encode("peer-proof"), 32));
}

function mac(key: Buffer, serverId: string, at: number, call: PeerCall): Buffer {
  return createHmac("sha256", key).update(`v1\n${serverId}\n${at}\n${call.procedure}\n${call.conversationId}`).digest();
}

/** Creates the signer/checker. */
export function createPeerProof(masterKey: Uint8Array, selfId: string): PeerProof {
  const key = peerKey(masterKey);
  return {
    sign(call, now = Date.now()) {
      return `v1.${selfId}.${now}.${mac(key, selfId, now, call).toString("base64url")}`;
    },
    verify(header, call, now = Date.now()) {
      const parts = header.split(".");
      const [version, serverId, at, sig] = parts;
      if (parts.length !== 4 || version !== "v1" || !SERVER_ID_PATTERN.test(serverId!) || !/^[0-9]{1,15}$/.test(at!)) {
        throw new PeerProofError("malformed");
      }
      if (Math.abs(now - Number(at)) > MAX_SKEW_MS) throw new PeerProofError("stale");
      const expected = mac(key, serverId!, Number(at), call);
      const given = Buffer.from(sig!, "base64url");
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new PeerProofError("does not verify");
      return serverId!;
    },
  };
}
