// The mask-compiling thread: compiles each requested set and hands its arrays over, in the order asked.
import { parentPort } from "node:worker_threads";
import type { CompileReply, CompileRequest } from "./mask-compiler.js";
import { buffersOf, compileMaskSet } from "./masker.js";

const port = parentPort;
if (port === null) throw new Error("mask-compiler-thread: run it as a worker thread");

port.on("message", ({ id, values, options }: CompileRequest) => {
  let compiled: ReturnType<typeof compileMaskSet>;
  try {
    compiled = compileMaskSet(values, options);
  } catch (error) {
    const { name, message } = error instanceof Error ? error : new Error(String(error));
    port.postMessage({ id, ok: false, error: { name, message } } satisfies CompileReply);
    return;
  }
  // Transferred, not copied: this thread never uses the set again (10,000 secrets are ~80 MiB).
  port.postMessage({ id, ok: true, compiled } satisfies CompileReply, buffersOf(compiled));
});
