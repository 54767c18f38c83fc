// Child-process entry of the bench server: starts a temp server and answers the parent over IPC.
import { startTempServer } from "./temp-server.js";

/** Messages the parent sends; see bench-server.ts. */
export type ToServer = { type: "cpu" } | { type: "close" };
/** Messages this child sends back. */
export type FromServer = { type: "ready"; url: string; token: string } | { type: "cpu"; usage: NodeJS.CpuUsage };

const send = (message: FromServer) => process.send?.(message);
const temp = await startTempServer();
send({ type: "ready", url: temp.url, token: temp.token });

let closing = false;
const shutdown = async () => {
  if (closing) return;
  closing = true;
  await temp.close();
  // Explicit exit: the IPC channel or a client's idle HTTP/2 session could otherwise keep this process alive.
  // --cpu-prof still writes its profile on process.exit.
  process.exit(0);
};
process.on("message", (message: ToServer) => {
  if (message.type === "cpu") send({ type: "cpu", usage: process.cpuUsage() });
  else void shutdown();
});
// The parent died or closed the channel: do not linger as an orphan holding a temp dir.
process.on("disconnect", () => void shutdown());
