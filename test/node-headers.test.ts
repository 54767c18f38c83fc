// Request headers read from Node's object answer every Headers method as the adapter's copied Headers would.
import type { IncomingHttpHeaders } from "node:http";
import { describe, expect, it } from "vitest";
import { NodeRequestHeaders } from "../server/net/node-headers.js";

/** As Connect's adapter converts Node's headers (nodeHeaderToWebHeader). */
function copied(node: IncomingHttpHeaders): Headers {
  const h = new Headers();
  for (const key in node) {
    if (key.startsWith(":")) continue;
    const value = node[key];
    if (typeof value === "string") h.append(key, value);
    else if (Array.isArray(value)) for (const v of value) h.append(key, v);
    else if (typeof value === "number") h.append(key, String(value));
  }
  return h;
}

const listed = (h: Headers) => {
  const out: [string, string][] = [];
  h.forEach((v, k) => {
    out.push([k, v]);
  });
  return out;
};

const samples: IncomingHttpHeaders[] = [
  { ":path": "/veil.v1.SecretService/GetSecret", ":method": "POST", "content-type": "application/grpc", te: "trailers", authorization: "Bearer veil_abc", "x-request-id": "r-1" },
  { "x-list": ["a", " b ", "c"], "set-cookie": ["x=1", "y=2"], "user-agent": "  grpc-node-js/1.14  ", "x-empty": "" },
  { "x-tab": "\tv\t", "content-length": "12", "grpc-timeout": "30S" },
];
const names = ["content-type", "Content-Type", "AUTHORIZATION", "x-request-id", "te", "x-list", "set-cookie", "user-agent", "x-empty", "x-tab", "missing", "grpc-timeout", "content-length"];

describe("NodeRequestHeaders", () => {
  for (const [i, node] of samples.entries()) {
    it(`sample ${i}: get, has, forEach, entries, getSetCookie as the copied Headers`, () => {
      const expected = copied(node);
      const lazy = new NodeRequestHeaders(node);
      for (const n of names) {
        expect(lazy.get(n), n).toBe(expected.get(n));
        expect(lazy.has(n), n).toBe(expected.has(n));
      }
      expect(listed(lazy)).toEqual(listed(expected));
      expect([...(lazy as unknown as Iterable<[string, string]>)]).toEqual([...(expected as unknown as Iterable<[string, string]>)]);
      expect(lazy.getSetCookie()).toEqual(expected.getSetCookie());
    });

    it(`sample ${i}: after set, append and delete, the same as the copied Headers changed alike`, () => {
      const expected = copied(node);
      const lazy = new NodeRequestHeaders(node);
      for (const h of [expected, lazy]) {
        h.set("x-request-id", "changed");
        h.append("x-list", "d");
        h.delete("te");
      }
      for (const n of names) expect(lazy.get(n), n).toBe(expected.get(n));
      expect(listed(lazy)).toEqual(listed(expected));
      expect(lazy instanceof Headers).toBe(true);
    });
  }

  it("refuses a name Headers refuses, as Headers does", () => {
    const lazy = new NodeRequestHeaders({ "content-type": "application/grpc" });
    expect(() => lazy.get("bad name")).toThrow(TypeError);
    expect(() => lazy.get(":path")).toThrow(TypeError);
    expect(() => new Headers().get("bad name")).toThrow(TypeError);
  });
});
