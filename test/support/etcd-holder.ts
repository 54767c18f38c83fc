// A child process that holds an etcd lock and an ephemeral key until it is killed (for lease-expiry tests).
import { openEtcdStore } from "../../server/store/etcd-store.js";

const [endpoints, prefix] = process.argv.slice(2);
const store = await openEtcdStore({ endpoints: endpoints!.split(","), prefix: prefix!, leaseTtlSeconds: 3 });
await store.putEphemeral("srv\0holder", new TextEncoder().encode(String(process.pid)));
void store.withLock("rotation", async () => {
  process.stdout.write("holding\n");
  await new Promise(() => {});
});
