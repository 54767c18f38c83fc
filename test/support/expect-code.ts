// Asserts that a call fails with a ConnectError of a given code (and message).
import { Code, ConnectError } from "@connectrpc/connect";
import { expect } from "vitest";

/** Awaits `call` and checks the error's class, code and (optionally) message. */
export async function expectCode(call: Promise<unknown> | (() => Promise<unknown>), code: Code, message?: RegExp): Promise<ConnectError> {
  const error = await (typeof call === "function" ? call() : call).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, `expected ${Code[code]}, but the call succeeded`).toBeInstanceOf(ConnectError);
  const ce = error as ConnectError;
  expect(Code[ce.code], ce.message).toBe(Code[code]);
  if (message) expect(ce.rawMessage).toMatch(message);
  return ce;
}
