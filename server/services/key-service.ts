// KeyService: rotates and retires keyring generations (operator only), and reports progress.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { authorize } from "../domain/policy.js";
import type { Rotation, RotationStatus } from "../crypto/rotation.js";
import { principalOf } from "../rpc/context.js";
import { type KeyService, type KeyStatus, KeyStatusSchema } from "../../gen/veil/v1/keys_pb.js";

function toStatus(status: RotationStatus): KeyStatus {
  return create(KeyStatusSchema, {
    activeGeneration: status.activeGeneration,
    generations: status.generations,
    reencrypting: status.reencrypting,
    valuesMoved: BigInt(status.valuesMoved),
    valuesRemaining: BigInt(status.valuesRemaining),
    ...(status.rotatedAt !== undefined ? { rotatedAt: timestampFromDate(new Date(status.rotatedAt)) } : {}),
  });
}

/** Builds the KeyService handlers over the rotation controller. */
export function createKeyService({ rotation }: { rotation: Rotation }): ServiceImpl<typeof KeyService> {
  return {
    async rotateKeys(req, ctx) {
      authorize(principalOf(ctx), "key.rotate");
      await rotation.rotate();
      if (req.wait) await rotation.idle();
      return { status: toStatus(rotation.status()) };
    },

    async getKeyStatus(_req, ctx) {
      authorize(principalOf(ctx), "key.status");
      return { status: toStatus(rotation.status()) };
    },

    async retireKeys(_req, ctx) {
      authorize(principalOf(ctx), "key.retire");
      const retired = await rotation.retireOld();
      return { retired, status: toStatus(rotation.status()) };
    },
  };
}
