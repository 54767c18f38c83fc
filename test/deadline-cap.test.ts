// A client deadline past Node's timer range (24.8 days) used to run out at once, on every protocol.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { grpc, grpcJsClient } from "./support/grpc-js.js";
import { startTestServer, type TestServer } from "./support/server.js";

const THIRTY_DAYS_MS = 30 * 24 * 3600 * 1000;

describe("deadlines past 24.8 days", () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer();
  });
  afterAll(async () => {
    await s.close();
  });

  it("a grpc-js server stream (Health/Watch) with a 30-day deadline stays open until the client cancels it", async () => {
    const health = grpcJsClient(s.port, "Health");
    try {
      const raw = health.raw as unknown as Record<string, (...a: unknown[]) => grpc.ClientReadableStream<{ status: string }>>;
      const call = raw.Watch!.call(health.raw, { service: "" }, new grpc.Metadata(), { deadline: Date.now() + THIRTY_DAYS_MS });
      const seen: string[] = [];
      const ended = new Promise<grpc.ServiceError | "end">((resolve) => {
        call.on("error", (e: grpc.ServiceError) => resolve(e));
        call.on("end", () => resolve("end"));
      });
      call.on("data", (m: { status: string }) => seen.push(m.status));
      const early = await Promise.race([ended, new Promise((r) => setTimeout(() => r("still open"), 700))]);
      expect(early).toBe("still open");
      expect(seen).toEqual(["SERVING"]);
      call.cancel();
      expect(await ended).toMatchObject({ code: grpc.status.CANCELLED });
    } finally {
      health.close();
    }
  });

  it("a Connect server stream over HTTP/1.1 with connect-timeout-ms of 30 days stays open (Connect's adapter)", async () => {
    const abort = new AbortController();
    const body = Buffer.concat([Buffer.from([0, 0, 0, 0, 2]), Buffer.from("{}")]);
    const answer = await fetch(`${s.url}/grpc.health.v1.Health/Watch`, {
      method: "POST",
      headers: { "content-type": "application/connect+json", "connect-timeout-ms": String(THIRTY_DAYS_MS) },
      body,
      signal: abort.signal,
    });
    expect(answer.status).toBe(200);
    const reader = answer.body!.getReader();
    let received = Buffer.alloc(0);
    while (received.length < 5 || received.length < 5 + received.readUInt32BE(1)) {
      const { value, done } = await reader.read();
      if (done) break;
      received = Buffer.concat([received, value]);
    }
    expect(received.subarray(5).toString()).toBe('{"status":"SERVING"}');
    // Without the cap the deadline fires after 1 ms: the end-of-stream message with deadline_exceeded.
    const next = await Promise.race([reader.read().then((r) => (r.done ? "ended" : Buffer.from(r.value).toString())), new Promise((r) => setTimeout(() => r("still open"), 700))]);
    expect(next).toBe("still open");
    abort.abort();
  });

  it("a malformed timeout is still refused with Connect's INVALID_ARGUMENT, naming the value", async () => {
    const answer = await fetch(`${s.url}/grpc.health.v1.Health/Check`, {
      method: "POST",
      headers: { "content-type": "application/json", "connect-timeout-ms": "12345678901" },
      body: "{}",
    });
    expect(answer.status).toBe(400);
    expect(await answer.json()).toMatchObject({ code: "invalid_argument", message: expect.stringContaining("12345678901") });
  });
});
