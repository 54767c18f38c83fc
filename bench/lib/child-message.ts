// Waits for one typed IPC message from a bench server child, failing if the child dies or reports a failure first.
import type { ChildProcess } from "node:child_process";

/** The IPC messages a bench server child may send; `failed` carries the reason it could not go on. */
type Message = { type: string } & ({ type: "failed"; message: string } | { type: string });

/** Resolves with the next message of `type`; rejects on a `failed` message or on the child's exit. */
export function waitForChildMessage<M extends Message, T extends M["type"]>(child: ChildProcess, type: T, who: string): Promise<Extract<M, { type: T }>> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: M) => {
      if (message.type === "failed" && "message" in message) {
        cleanup();
        reject(new Error(`${who} failed: ${message.message}`));
      } else if (message.type === type) {
        cleanup();
        resolve(message as Extract<M, { type: T }>);
      }
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`${who} exited (code ${code}) before sending "${type}"`));
    };
    const cleanup = () => {
      child.off("message", onMessage);
      child.off("exit", onExit);
    };
    child.on("message", onMessage);
    child.on("exit", onExit);
  });
}
