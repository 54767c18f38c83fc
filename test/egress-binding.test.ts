// Table tests for the egress seam: host-pattern parsing and matching, and the placeholder generator.
import { describe, expect, it } from "vitest";
import { createPlaceholder, matchesHost, parseHostPattern, PLACEHOLDER_MIN_LENGTH, PLACEHOLDER_PREFIX } from "../server/domain/egress-binding.js";

describe("matchesHost", () => {
  const table: Array<[pattern: string, host: string, port: number, expected: boolean]> = [
    ["api.openai.com", "api.openai.com", 443, true],
    ["api.openai.com", "api.openai.com", 80, true],
    ["api.openai.com", "API.OpenAI.com", 443, true],
    ["API.OPENAI.COM", "api.openai.com", 443, true],
    ["api.openai.com", "api.openai.com", 8443, false],
    ["api.openai.com", "evil.api.openai.com", 443, false],
    ["api.openai.com", "api.openai.com.evil.net", 443, false],
    ["api.openai.com", "openai.com", 443, false],
    ["api.openai.com", "api.openai.com.", 443, false],
    ["localhost:8443", "localhost", 8443, true],
    ["localhost:8443", "localhost", 443, false],
    ["localhost:8443", "localhost", 80, false],
    ["*.github.com", "api.github.com", 443, true],
    ["*.github.com", "a.b.github.com", 80, true],
    ["*.github.com", "github.com", 443, false],
    ["*.github.com", "evilgithub.com", 443, false],
    ["*.github.com", "api.github.com", 22, false],
    ["*.github.com:8080", "x.github.com", 8080, true],
    ["*.github.com:8080", "x.github.com", 443, false],
    ["[::1]:8443", "[::1]", 8443, true],
    ["[::1]:8443", "::1", 8443, true],
    ["[2001:db8::1]", "[2001:DB8::1]", 443, true],
    ["127.0.0.1:9000", "127.0.0.1", 9000, true],
    ["*", "anything.com", 443, false],
    ["*.com", "example.com", 443, false],
    ["https://api.openai.com", "api.openai.com", 443, false],
  ];
  it.each(table)("%s against %s:%i is %s", (pattern, host, port, expected) => {
    expect(matchesHost(pattern, host, port)).toBe(expected);
  });
});

describe("parseHostPattern", () => {
  const ok = ["api.openai.com", "API.openai.com", "host:1", "host:65535", "*.example.com", "*.example.co.uk:444", "[::1]", "[::1]:443", "10.0.0.1", "localhost"];
  const bad: Array<[string, RegExp]> = [
    ["", /empty/],
    ["*", /DNS name|wildcard/],
    ["*.com", /two labels/],
    ["a.*.com", /leading/],
    ["https://api.openai.com", /no scheme/],
    ["api.openai.com/v1", /no scheme, path/],
    ["user@api.openai.com", /userinfo/],
    ["api openai.com", /whitespace/],
    ["host:0", /1-65535/],
    ["host:65536", /1-65535/],
    ["host:", /DNS name/],
    ["-bad.com", /DNS name/],
    ["bad_.com", /DNS name/],
    ["::1", /DNS name|IPv6/],
    ["[zz::1]", /IPv6/],
  ];
  it.each(ok)("accepts %s", (p) => expect(typeof parseHostPattern(p)).toBe("object"));
  it.each(bad)("refuses %j", (p, rule) => {
    const parsed = parseHostPattern(p);
    expect(typeof parsed).toBe("string");
    expect(parsed as string).toMatch(rule);
  });
});

describe("createPlaceholder", () => {
  const table: Array<[label: string, value: string, length: number]> = [
    ["a short value gets the minimum length", "sk-123", PLACEHOLDER_MIN_LENGTH],
    ["a value of the minimum length", "x".repeat(PLACEHOLDER_MIN_LENGTH), PLACEHOLDER_MIN_LENGTH],
    ["a long value: as long as the value", `sk-proj-${"A".repeat(100)}`, 108],
    ["non-ASCII: as long as its UTF-8 bytes", "é".repeat(20), 40],
    ["a one-character value", "a", PLACEHOLDER_MIN_LENGTH],
    ["a value inside the prefix", "ph", PLACEHOLDER_MIN_LENGTH],
    ["the underscore", "_", PLACEHOLDER_MIN_LENGTH],
    ["an empty value", "", PLACEHOLDER_MIN_LENGTH],
  ];
  it.each(table)("%s", (_label, value, length) => {
    for (let i = 0; i < 200; i++) {
      const p = createPlaceholder(value);
      expect(p).toMatch(/^[A-Za-z0-9_]+$/);
      expect(p.length).toBe(length);
      if (value !== "") expect(p.includes(value)).toBe(false);
      if (!PLACEHOLDER_PREFIX.includes(value) || value === "") expect(p.startsWith(PLACEHOLDER_PREFIX)).toBe(true);
    }
  });

  it("never repeats a taken placeholder and differs on every call", () => {
    const taken = new Set<string>();
    for (let i = 0; i < 1000; i++) taken.add(createPlaceholder("same-value", taken));
    expect(taken.size).toBe(1000);
  });
});
