// A real browser page on another origin calls Veil over Connect-Web (Connect and gRPC-Web): CORS preflight, unary calls and a server stream over fetch.
import { existsSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { Code } from "@connectrpc/connect";
import { build } from "esbuild";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PageRunResult } from "./browser/page.js";
import { startTestServer, type TestServer } from "./support/server.js";

const CHROMIUM = "/usr/bin/chromium";
const chromiumMissing = !existsSync(CHROMIUM);
// The skip reason rides in the test names, so a skipped run says why instead of passing silently.
const skipNote = chromiumMissing ? ` (skipped: chromium not installed at ${CHROMIUM})` : "";
const entry = fileURLToPath(new URL("./browser/page.ts", import.meta.url));

async function bundlePage(): Promise<string> {
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    write: false,
    logLevel: "silent",
  });
  return result.outputFiles[0]!.text;
}

/** Serves the page from its own port, so every call to Veil is cross-origin. */
async function servePage(bundle: string): Promise<{ server: Server; origin: string }> {
  const html = '<!doctype html><html><head><meta charset="utf-8"><title>veil</title><script type="module" src="/page.js"></script></head><body></body></html>';
  const server = createServer((req, res) => {
    if (req.url === "/" || req.url?.startsWith("/?")) {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(html);
    } else if (req.url === "/page.js") {
      res.writeHead(200, { "content-type": "text/javascript; charset=utf-8" }).end(bundle);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

interface Preflight {
  url: string;
  method: string;
  requestHeaders: string;
}

describe("browser client over Connect-Web", () => {
  let veil: TestServer;
  let pageServer: { server: Server; origin: string };
  let browser: Browser;
  let page: Page;
  const preflights: Preflight[] = [];
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    if (chromiumMissing) return;
    pageServer = await servePage(await bundlePage());
    // Cross-origin calls need the page's origin named: by default only the server's own origin may call.
    veil = await startTestServer({ extraFlags: ["--cors-origin", pageServer.origin] });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    page = await browser.newPage();
    page.on("console", (msg) => {
      if (msg.type() === "error") consoleErrors.push(msg.text());
    });
    // Playwright's request events hide CORS preflights; the DevTools protocol reports them.
    const cdp = await page.context().newCDPSession(page);
    await cdp.send("Network.enable");
    cdp.on("Network.requestWillBeSent", (e) => {
      if (e.type === "Preflight" || e.request.method === "OPTIONS") {
        const headers = e.request.headers as Record<string, string>;
        preflights.push({ url: e.request.url, method: headers["Access-Control-Request-Method"] ?? e.request.method, requestHeaders: headers["Access-Control-Request-Headers"] ?? "" });
      }
    });
    await page.goto(`${pageServer.origin}/`);
    await page.waitForFunction(() => typeof window.veilRun === "function", undefined, { timeout: 10_000 });
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise<void>((resolve) => (pageServer ? pageServer.server.close(() => resolve()) : resolve()));
    await veil?.close();
  });

  for (const protocol of ["connect", "grpc-web"] as const) {
    it.skipIf(chromiumMissing)(`${protocol}: set, list, get and a masked conversation from another origin${skipNote}`, async () => {
      const name = protocol === "connect" ? "BROWSER_CONNECT" : "BROWSER_GRPC_WEB";
      const value = `browser-canary-${protocol}-${Math.random().toString(36).slice(2)}`;
      const logsBefore = veil.logs.length;
      const args = { baseUrl: veil.url, token: veil.token, protocol, name, value };
      const result: PageRunResult = await page.evaluate((a) => window.veilRun(a), args);

      expect(result.error).toBeUndefined();
      expect(result.origin).toBe(pageServer.origin);
      expect(new URL(veil.url).origin).not.toBe(result.origin);
      expect(result.setVersion).toBe(1);
      expect(result.listedNames).toEqual([name]);
      expect(result.listedHasValue).toBe(false);
      expect(result.gotText).toBe(value);
      expect(result.missingCode).toBe(Code.NotFound);
      expect(result.started).toEqual({ secrets: [name], unmaskedSecrets: [] });
      expect(result.eventCases).toEqual(["started", "commandStarted", "output", "commandExited"]);
      expect(result.stdout).toBe("<secret-hidden>\n");
      expect(result.stderr).toBe("");
      expect(result.exitCode).toBe(0);
      // GetSecret is the one place the value may appear; everything else must be masked or metadata.
      const { gotText: _value, ...rest } = result;
      expect(JSON.stringify(rest)).not.toContain(value.slice("browser-canary-".length));

      // The server saw this protocol's wire format, not a fallback. Connect-Web defaults to
      // JSON, gRPC-Web to binary, so between them both codecs crossed the browser.
      const seen = new Set(
        veil.logs
          .slice(logsBefore)
          .map((l) => JSON.parse(l) as { msg?: string; protocol?: string })
          .filter((l) => l.msg === "rpc")
          .map((l) => l.protocol),
      );
      expect([...seen].sort()).toEqual(protocol === "connect" ? ["application/connect+json", "application/json"] : ["application/grpc-web+proto"]);
    });
  }

  it.skipIf(chromiumMissing)(`the browser preflighted the cross-origin calls, asking for the authorization header${skipNote}`, () => {
    expect(preflights.length).toBeGreaterThan(0);
    for (const p of preflights) {
      expect(p.url.startsWith(veil.url)).toBe(true);
      expect(p.method).toBe("POST");
    }
    expect(preflights.some((p) => /(^|,\s*)authorization(,|$)/i.test(p.requestHeaders))).toBe(true);
    expect(consoleErrors.filter((m) => /CORS|blocked/i.test(m))).toEqual([]);
  });
});
