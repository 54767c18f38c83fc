// The web console's static files (index.html and hashed assets, built into dist/console), served from memory with strict security headers.
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import type { OutgoingHttpHeaders } from "node:http";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { HttpRoute } from "./http-routes.js";
import type { NodeRequest, NodeResponse } from "./listener.js";

/** Sent with every console response: no inline or foreign script, no framing, no sniffing. */
export const CONSOLE_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cross-origin-opener-policy": "same-origin",
};

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".woff2": "font/woff2",
};

/** One file held in memory. */
interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

/** The console as loaded at start: index.html (absent when the console was never built) and the hashed assets. */
export interface ConsoleFiles {
  index: Asset | undefined;
  assets: ReadonlyMap<string, Asset>;
}

/**
 * The built console beside the code: `<repo>/dist/console` when running from the sources,
 * `dist/console` when running the compiled server (which lives in dist/ itself).
 */
export function defaultConsoleDir(): string {
  const fromSources = fileURLToPath(new URL("../../dist/console", import.meta.url));
  const fromDist = fileURLToPath(new URL("../../console", import.meta.url));
  return existsSync(join(fromSources, "index.html")) ? fromSources : fromDist;
}

function asset(body: Buffer, path: string): Asset {
  const etag = `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"`;
  return { body, type: CONTENT_TYPES[extname(path)] ?? "application/octet-stream", etag };
}

/** Reads the console's files into memory once; a missing build yields no index (GET / then answers 503). */
export function loadConsoleFiles(dir: string): ConsoleFiles {
  const indexPath = join(dir, "index.html");
  const index = existsSync(indexPath) ? asset(readFileSync(indexPath), indexPath) : undefined;
  const assets = new Map<string, Asset>();
  const assetDir = join(dir, "assets");
  if (index !== undefined && existsSync(assetDir)) {
    for (const entry of readdirSync(assetDir, { withFileTypes: true })) {
      if (entry.isFile()) assets.set(entry.name, asset(readFileSync(join(assetDir, entry.name)), entry.name));
    }
  }
  return { index, assets };
}

type Writable = { writeHead(status: number, headers: OutgoingHttpHeaders): unknown; end(body?: Buffer | string): unknown };

function send(req: NodeRequest, res: NodeResponse, status: number, headers: OutgoingHttpHeaders, body: Buffer | string): void {
  const out = res as unknown as Writable;
  out.writeHead(status, { ...CONSOLE_SECURITY_HEADERS, "content-length": Buffer.byteLength(body), ...headers });
  out.end(req.method === "HEAD" ? undefined : body);
}

function text(req: NodeRequest, res: NodeResponse, status: number, message: string, extra: OutgoingHttpHeaders = {}): void {
  send(req, res, status, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store", ...extra }, `${message}\n`);
}

function serveFile(req: NodeRequest, res: NodeResponse, file: Asset, cacheControl: string): void {
  const headers = { "content-type": file.type, "cache-control": cacheControl, etag: file.etag };
  if (req.headers["if-none-match"] === file.etag) {
    const out = res as unknown as Writable;
    out.writeHead(304, { ...CONSOLE_SECURITY_HEADERS, ...headers });
    out.end();
    return;
  }
  send(req, res, 200, headers, file.body);
}

function pathOf(req: NodeRequest): string {
  const url = req.url ?? "/";
  const q = url.indexOf("?");
  return q === -1 ? url : url.slice(0, q);
}

/** The route for `/`, `/index.html` and `/assets/<file>`; every other path goes on to the RPC handler. */
export function createConsoleRoute(files: ConsoleFiles): HttpRoute {
  return {
    matches(req) {
      const path = pathOf(req);
      return path === "/" || path === "/index.html" || path.startsWith("/assets/");
    },
    handle(req, res) {
      if (req.method !== "GET" && req.method !== "HEAD") return text(req, res, 405, "method not allowed: the console answers GET and HEAD", { allow: "GET, HEAD" });
      const path = pathOf(req);
      if (path.startsWith("/assets/")) {
        const file = files.index === undefined ? undefined : files.assets.get(path.slice("/assets/".length));
        if (file === undefined) return text(req, res, 404, "not found");
        // Names carry their content hash: a changed file is a new name, so caches may keep these forever.
        return serveFile(req, res, file, "public, max-age=31536000, immutable");
      }
      if (files.index === undefined) return text(req, res, 503, "The web console is not built: run `npm run build` (it writes dist/console/), then restart the server.");
      serveFile(req, res, files.index, "no-cache");
    },
  };
}
