// BackupService: streams a consistent snapshot of the whole store as one backup file (operator only).
import type { ServiceImpl } from "@connectrpc/connect";
import { encodeBackup } from "../backup/backup-file.js";
import { fail } from "../errors.js";
import { authorize } from "../domain/policy.js";
import { auditTrail } from "../rpc/audit.js";
import { principalOf } from "../rpc/context.js";
import type { KvStore } from "../store/kv.js";
import { LAYOUT_VERSION } from "../layout.js";
import type { BackupService } from "../../gen/veil/v1/backup_pb.js";

/** Builds the BackupService handlers over the store. */
export function createBackupService({ store }: { store: KvStore }): ServiceImpl<typeof BackupService> {
  return {
    async *backup(_req, ctx) {
      authorize(principalOf(ctx), "backup");
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
