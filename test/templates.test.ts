// Parsing and rendering of secret references and template expressions: what users write in env values, files and `veil inject` templates.
import { describe, expect, it } from "vitest";
import { VeilError } from "../server/errors.js";
import { parseEnvValue, parseTemplate, referencedNames, renderTemplate, type TemplateValue } from "../server/domain/templates.js";

const values: Record<string, TemplateValue> = {
  API_KEY: { kind: "text", text: "k-123" },
  DB: { kind: "fields", fields: { user: "app", password: "pw", "ssl.mode": "require" } },
};
const valueFor = (name: string) => values[name]!;

function invalid(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(VeilError);
    expect((error as VeilError).kind).toBe("invalid_argument");
    return (error as VeilError).message;
  }
  throw new Error("expected INVALID_ARGUMENT");
}

describe("templates", () => {
  it("renders expressions with and without spaces, fields included (dots in field names too)", () => {
    const parts = parseTemplate("url=https://x/?key={{secrets.API_KEY}}\nuser={{ secrets.DB.user }}:{{  secrets.DB.password  }} {{ secrets.DB.ssl.mode }}", "files[a]");
    expect(referencedNames(parts)).toEqual(["API_KEY", "DB"]);
    expect(renderTemplate(parts, valueFor, "files[a]")).toBe("url=https://x/?key=k-123\nuser=app:pw require");
  });

  it("a whole veil:// env value is a reference; inside other text it is literal", () => {
    expect(renderTemplate(parseEnvValue("veil://DB/user", "env[U]"), valueFor, "env[U]")).toBe("app");
    expect(renderTemplate(parseEnvValue("veil://API_KEY", "env[K]"), valueFor, "env[K]")).toBe("k-123");
    expect(renderTemplate(parseEnvValue("see veil://API_KEY", "env[K]"), valueFor, "env[K]")).toBe("see veil://API_KEY");
  });

  it("bad syntax is INVALID_ARGUMENT with the place and the rule", () => {
    expect(invalid(() => parseTemplate("a\nb {{ secret.API_KEY }}", "files[c.txt]"))).toMatch(/^files\[c\.txt\]: line 2, column 3: unknown expression; an expression must be \{\{ secrets\.NAME \}\}/);
    expect(invalid(() => parseTemplate("x {{ secrets.API_KEY", "env[A]"))).toMatch(/line 1, column 3: "\{\{" is never closed/);
    expect(invalid(() => parseEnvValue("veil://1BAD", "env[A]"))).toMatch(/^env\[A\]: a reference must be veil:\/\/NAME or veil:\/\/NAME\/FIELD/);
  });

  it("a field of a single value, a missing field, or a whole key/value secret is refused naming the fields, never a value", () => {
    expect(invalid(() => renderTemplate(parseTemplate("{{ secrets.API_KEY.x }}", "w"), valueFor, "w"))).toBe("w: API_KEY is a single value; it has no field x");
    const missing = invalid(() => renderTemplate(parseTemplate("{{ secrets.DB.User }}", "w"), valueFor, "w"));
    expect(missing).toContain("case-sensitive; it has password, ssl.mode, user");
    expect(missing).not.toContain("pw");
    expect(invalid(() => renderTemplate(parseEnvValue("veil://DB", "w"), valueFor, "w"))).toContain("has fields (password, ssl.mode, user); name one");
  });
});
