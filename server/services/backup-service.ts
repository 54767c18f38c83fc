// BackupService: streams a consistent snapshot of the whole store as one backup file (operator only).
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { encodeBackup } from "../backup/backup-file.js";
import { fail } from "../domain/errors.js";
import { auditTrail } from "../rpc/audit.js";
import { principalOf } from "../rpc/context.js";
import type { KvStore } from "../store/kv.js";
import { LAYOUT_VERSION } from "../store/layout.js";
import type { BackupService } from "../../gen/veil/v1/backup_pb.js";

/** A backup holds every tenant's data, so only the operator token (not a tenant admin) may take one. */
function requireOperator(ctx: HandlerContext) {
  if (!principalOf(ctx).operator) throw fail.denied("backup: only the operator token takes backups (it holds every tenant's data)");
}

/** Builds the BackupService handlers over the store. */
export function createBackupService({ store }: { store: KvStore }): ServiceImpl<typeof BackupService> {
  return {
    async *backup(_req, ctx) {
      requireOperator(ctx);
      if (store.snapshot === undefined) throw fail.precondition("backup: this store has no consistent snapshot to read online");
      // On record before any byte leaves: a backup that cannot be audited is not taken.
      await auditTrail(ctx).commit();
      const snapshot = await store.snapshot();
      try {
        for await (const data of encodeBackup(snapshot, LAYOUT_VERSION)) {
          if (ctx.signal.aborted) return;
          yield { data };
        }
      } finally {
        await snapshot.close();
      }
    },
  };
}
