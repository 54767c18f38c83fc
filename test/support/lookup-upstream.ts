// A plain HTTP upstream for lookup secrets on 127.0.0.1:0: JSON, text, failures, slowness and redirects, counting every request.
import * as http from "node:http";
import type { AddressInfo } from "node:net";

/** One request as the upstream saw it. */
export interface LookupSeen {
  method: string;
  path: string;
  authorization: string | undefined;
  headers: http.IncomingHttpHeaders;
}

/** The running upstream. */
export interface LookupUpstream {
  port: number;
  /** `http://127.0.0.1:PORT` */
  origin: string;
  seen: LookupSeen[];
  /** How many requests reached `path` (query ignored). */
  count(path: string): number;
  close(): Promise<void>;
}

/**
 * Routes: `/token` (JSON `{ token, n, obj }`; 401 unless `Authorization` is `Bearer <expectAuth>`
 * when that is set), `/text` (plain text), `/fail` (500), `/slow` (answers after 3 s), `/html`
 * (not JSON), `/redirect` (302 to /token), `/big` (100 KiB). Every body holds `canary`.
 */
export async function startLookupUpstream(canary: string, expectAuth?: string): Promise<LookupUpstream> {
  const seen: LookupSeen[] = [];
  const server = http.createServer((req, res) => {
    const path = (req.url ?? "").split("?")[0]!;
    seen.push({ method: req.method ?? "", path, authorization: req.headers.authorization, headers: req.headers });
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    switch (path) {
      case "/token":
        if (expectAuth !== undefined && req.headers.authorization !== `Bearer ${expectAuth}`) return json(401, { error: `bad auth ${canary}` });
        return json(200, { token: canary, n: 42, obj: { inner: canary } });
      case "/text":
        res.end(`${canary}`);
        return;
      case "/fail":
        return json(500, { error: `upstream broke ${canary}` });
      case "/slow":
        setTimeout(() => json(200, { token: canary }), 3000).unref();
        return;
      case "/html":
        res.writeHead(200, { "content-type": "text/html" });
        res.end(`<html>${canary}</html>`);
        return;
      case "/redirect":
        res.writeHead(302, { location: "/token" });
        res.end(canary);
        return;
      case "/big":
        res.end(canary + "x".repeat(100 * 1024));
        return;
      default:
        json(404, { error: canary });
    }
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    origin: `http://127.0.0.1:${port}`,
    seen,
    count: (path) => seen.filter((s) => s.path === path).length,
    close: async () => {
      server.closeAllConnections();
      await new Promise((ok) => server.close(ok));
    },
  };
}
