// TokenService: mints, lists and revokes bearer tokens.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { TokenRecord, Tokens } from "../domain/tokens.js";
import { auditTrail } from "../rpc/audit.js";
import { principalOf } from "../rpc/context.js";
import { Role, type TokenInfo, TokenInfoSchema, type TokenService } from "../../gen/veil/v1/token_pb.js";

/** A stored token as TokenInfo. */
export function toTokenInfo(record: TokenRecord): TokenInfo {
  return create(TokenInfoSchema, {
    tokenId: record.id,
    tenant: record.tenant,
    role: record.role === "admin" ? Role.ADMIN : Role.AGENT,
    agent: record.agent,
    createdAt: timestampFromDate(new Date(record.createdAt)),
    ...(record.expiresAt !== undefined ? { expiresAt: timestampFromDate(new Date(record.expiresAt)) } : {}),
    revoked: record.revoked,
    description: record.description,
    operator: record.operator,
    allowNetwork: record.allowNetwork === true,
  });
}

/** Builds the TokenService handlers over the token registry. */
export function createTokenService({ tokens }: { tokens: Tokens }): ServiceImpl<typeof TokenService> {
  return {
    async createToken(req, ctx) {
      const { token, record } = await tokens.create(principalOf(ctx), {
        tenant: req.tenant,
        role: req.role === Role.AGENT ? "agent" : "admin",
        agent: req.agent,
        ttlSeconds: Number(req.ttlSeconds),
        description: req.description,
        allowNetwork: req.allowNetwork,
      }, (record) =>
        auditTrail(ctx).batch([
          { detail: `${record.id} ${record.role}${record.agent ? ` agent ${record.agent}` : ""}${record.allowNetwork ? " allow_network" : ""} tenant ${record.tenant}` },
        ]),
      );
      return { token, tokenId: record.id, info: toTokenInfo(record) };
    },

    async listTokens(req, ctx) {
      const page = await tokens.list(principalOf(ctx), req);
      return { tokens: page.records.map(toTokenInfo), nextPageToken: page.nextPageToken };
    },

    async revokeToken(req, ctx) {
      await tokens.revoke(principalOf(ctx), req.tokenId, (record) => auditTrail(ctx).batch([{ detail: `${record.id} tenant ${record.tenant}` }]));
      return {};
    },
  };
}
