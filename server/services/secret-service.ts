// SecretService: calls the vault with requests validated at the edge, answers metadata and values.
import type { ServiceImpl } from "@connectrpc/connect";
import type { Lookups } from "../domain/lookups.js";
import type { Vault } from "../domain/vault.js";
import { auditTrail } from "../rpc/audit.js";
import { principalOf } from "../rpc/context.js";
import type { SecretService } from "../../gen/veil/v1/secret_pb.js";
import { toSecretMeta, toSecretWrite, valueFields } from "./secret-messages.js";

/** Builds the SecretService handlers over a vault; GetSecret of a lookup fetches it (or serves it from the cache). */
export function createSecretService({ vault, lookups }: { vault: Vault; lookups: Lookups }): ServiceImpl<typeof SecretService> {
  return {
    async setSecrets(req, ctx) {
      const trail = auditTrail(ctx);
      const records = await vault.setSecrets(principalOf(ctx), req.session, req.secrets.map(toSecretWrite), (written) =>
        trail.batch(written.map((r) => ({ secretName: r.name, version: r.version }))),
      );
      return { secrets: records.map(toSecretMeta) };
    },

    async listSecrets(req, ctx) {
      const page = await vault.listSecrets(principalOf(ctx), req.session, req);
      return { secrets: page.records.map(toSecretMeta), nextPageToken: page.nextPageToken };
    },

    async getSecret(req, ctx) {
      const principal = principalOf(ctx);
      const { record, value: stored, version } = await vault.getSecret(principal, req.session, req.name, Number(req.version));
      auditTrail(ctx).note({ version });
      const { value } = await lookups.open({ principal, session: req.session, record, version, where: "name" }, stored);
      return { meta: { ...toSecretMeta(record), version: BigInt(version) }, ...valueFields(value) };
    },

    async deleteSecret(req, ctx) {
      const trail = auditTrail(ctx);
      await vault.deleteSecret(principalOf(ctx), req.session, req.name, ([record]) => trail.batch([{ version: record!.version }]));
      return {};
    },
  };
}
