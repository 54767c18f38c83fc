// The console's HTTP surface, with plain fetch: exact security headers, content types, caching, 404/405/503, and the RPC paths untouched.
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVeilClient } from "../client/index.js";
import { buildConsoleForTest } from "./support/console.js";
import { startTestServer, type TestServer } from "./support/server.js";
import { tempDir } from "./support/temp-dir.js";

const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

function expectSecurityHeaders(res: Response) {
  expect(res.headers.get("content-security-policy")).toBe(CSP);
  expect(res.headers.get("x-content-type-options")).toBe("nosniff");
  expect(res.headers.get("referrer-policy")).toBe("no-referrer");
  expect(res.headers.get("x-frame-options")).toBe("DENY");
  expect(res.headers.get("cross-origin-opener-policy")).toBe("same-origin");
}

describe("console over HTTP", () => {
  let veil: TestServer;
  let built: { dir: string; cleanup: () => void };
  let assets: string[];

  beforeAll(async () => {
    built = await buildConsoleForTest();
    veil = await startTestServer({ extraFlags: ["--console-dir", built.dir] });
    const html = await (await fetch(`${veil.url}/`)).text();
    assets = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]!);
  });
  afterAll(async () => {
    await veil?.close();
    built?.cleanup();
  });

  it("GET / and /index.html serve the page, not cached without revalidation, with the exact CSP", async () => {
    for (const path of ["/", "/index.html", "/?x=1"]) {
      const res = await fetch(`${veil.url}${path}`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
      expect(res.headers.get("cache-control")).toBe("no-cache");
      expectSecurityHeaders(res);
      const html = await res.text();
      // No inline script or style for the CSP to block: only files from /assets/.
      expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
      expect(html).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i);
    }
  });

  it("hashed assets have their content types and are cached for good; an ETag revalidates", async () => {
    expect(assets.map((a) => a.replace(/-[A-Z0-9]{8}\./, "-HASH."))).toEqual(["/assets/main-HASH.css", "/assets/main-HASH.js"]);
    for (const path of assets) {
      const res = await fetch(`${veil.url}${path}`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe(path.endsWith(".js") ? "text/javascript; charset=utf-8" : "text/css; charset=utf-8");
      expect(res.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
      expectSecurityHeaders(res);
      const etag = res.headers.get("etag")!;
      expect((await res.arrayBuffer()).byteLength).toBeGreaterThan(100);
      const again = await fetch(`${veil.url}${path}`, { headers: { "if-none-match": etag } });
      expect(again.status).toBe(304);
    }
  });

  it("HEAD answers the headers without a body; other methods on console paths are 405", async () => {
    const head = await fetch(`${veil.url}/`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(Number(head.headers.get("content-length"))).toBeGreaterThan(0);
    expect(await head.text()).toBe("");
    for (const [method, path] of [["POST", "/"], ["PUT", "/index.html"], ["DELETE", assets[0]!], ["OPTIONS", "/"]] as const) {
      const res = await fetch(`${veil.url}${path}`, { method });
      expect(res.status, `${method} ${path}`).toBe(405);
      expect(res.headers.get("allow")).toBe("GET, HEAD");
      expectSecurityHeaders(res);
    }
  });

  it("unknown assets and unknown paths are 404; the RPC paths still answer", async () => {
    const missing = await fetch(`${veil.url}/assets/main-NOPE.js`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get("content-type")).toBe("text/plain; charset=utf-8");
    expect((await fetch(`${veil.url}/assets/../index.html`)).status).toBe(200); // fetch normalises the path to /index.html
    expect((await fetch(`${veil.url}/nope`)).status).toBe(404);
    expect((await fetch(`${veil.url}/favicon.ico`)).status).toBe(404);
    const client = await createVeilClient({ baseUrl: veil.url, token: veil.token, protocol: "connect" });
    await expect(client.secrets.listSecrets({})).resolves.toBeDefined();
    const anon = await createVeilClient({ baseUrl: veil.url, token: "nope", protocol: "grpc" });
    await expect(anon.secrets.listSecrets({})).rejects.toMatchObject({ code: Code.Unauthenticated });
  });

  it("without a built console, GET / is a plain-text 503 saying to run npm run build; the API still serves", async () => {
    const empty = tempDir();
    const bare = await startTestServer({ extraFlags: ["--console-dir", empty.path] });
    try {
      const res = await fetch(`${bare.url}/`);
      expect(res.status).toBe(503);
      expect(res.headers.get("content-type")).toBe("text/plain; charset=utf-8");
      expect(await res.text()).toMatch(/npm run build/);
      expect((await fetch(`${bare.url}/assets/main-X.js`)).status).toBe(404);
      const client = await createVeilClient({ baseUrl: bare.url, token: bare.token, protocol: "connect" });
      await expect(client.secrets.listSecrets({})).resolves.toBeDefined();
    } finally {
      await bare.close();
      empty.cleanup();
    }
  });
});
