// The web console's sign-in and Secrets tab in real Chromium against a real server: every change is checked through the API.
import { mkdirSync } from "node:fs";
import { Code } from "@connectrpc/connect";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVeilClient, Role, type VeilClient } from "../client/index.js";
import { buildConsoleForTest, type ConsolePage, chromiumMissing, launchChromium, openConsole, signIn, skipNote } from "./support/console.js";
import { expectCode } from "./support/expect-code.js";
import { startTestServer, type TestServer } from "./support/server.js";

const CANARY = `console-canary-${Math.random().toString(36).slice(2)}`;
const UPDATE_SCREENSHOTS = process.env.VEIL_UPDATE_SCREENSHOTS === "1";

describe("web console: sign-in and secrets", () => {
  let veil: TestServer;
  let built: { dir: string; cleanup: () => void };
  let browser: Browser;
  let api: VeilClient;
  const pages: ConsolePage[] = [];

  beforeAll(async () => {
    if (chromiumMissing) return;
    built = await buildConsoleForTest();
    [veil, browser] = await Promise.all([startTestServer({ extraFlags: ["--console-dir", built.dir] }), launchChromium()]);
    api = await createVeilClient({ baseUrl: veil.url, token: veil.token, protocol: "connect" });
    // Two agents with tokens, so the console knows them and offers their checkboxes.
    for (const agent of ["support-bot", "billing-bot"]) await api.tokens.createToken({ role: Role.AGENT, agent });
  });

  afterAll(async () => {
    await browser?.close();
    await veil?.close();
    built?.cleanup();
  });

  /** A fresh signed-in page; its errors are checked when the test ends it with done(). */
  async function signedIn(options: { width?: number } = {}): Promise<ConsolePage> {
    const cp = await openConsole(browser, veil.url, options);
    pages.push(cp);
    await signIn(cp.page, veil.token);
    return cp;
  }

  /** Ends a page: no console errors, no uncaught exceptions, no CSP violations happened on it. */
  async function done(cp: ConsolePage): Promise<void> {
    expect(cp.errors).toEqual([]);
    await cp.close();
  }

  async function openAddForm(page: Page) {
    await page.getByRole("tab", { name: "Secrets" }).click();
    await page.getByRole("button", { name: "Add secret" }).click();
    await page.getByRole("textbox", { name: "Name", exact: true }).waitFor();
  }

  it.skipIf(chromiumMissing)(`(first, on a clean store) screenshots of the Secrets tab and the add form; readable at phone width${skipNote}`, async () => {
    await api.secrets.setSecrets({
      secrets: [
        { name: "GITHUB_TOKEN", text: "ghp-demo", description: "CI access to the monorepo", allowedAgents: ["support-bot", "billing-bot"] },
        { name: "GOOGLE_OAUTH", fields: { client_id: "demo-id", client_secret: "demo-secret" }, description: "OAuth client for the calendar integration", allowedAgents: ["support-bot"] },
        { name: "OPENAI_API_KEY", text: "sk-demo", description: "Model calls for the support agent", allowedAgents: ["support-bot"], agentReaders: ["support-bot"] },
        { name: "POSTGRES_URL", text: "postgres://demo", description: "Read replica, reporting only" },
      ],
    });
    const cp = await signedIn();
    const { page } = cp;
    const dir = new URL("../docs/", import.meta.url);
    if (UPDATE_SCREENSHOTS) mkdirSync(dir, { recursive: true });
    const shot = (file: string) => (UPDATE_SCREENSHOTS ? { path: new URL(file, dir).pathname, fullPage: true } : { fullPage: true });
    await page.getByRole("searchbox", { name: "Search by name prefix" }).fill("");
    await page.getByRole("link", { name: "GITHUB_TOKEN" }).waitFor();
    await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
    await page.mouse.move(0, 0);
    await page.screenshot(shot("console-secrets.png"));
    await openAddForm(page);
    await page.getByRole("textbox", { name: "Name", exact: true }).fill("SLACK_WEBHOOK");
    await page.getByRole("textbox", { name: "Description" }).fill("Alerts channel for the on-call agent");
    await page.getByRole("checkbox", { name: "support-bot", exact: true }).check();
    await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
    await page.mouse.move(0, 0);
    await page.screenshot(shot("console-add-secret.png"));
    await done(cp);

    for (const width of [390, 1280]) {
      const narrow = await signedIn({ width });
      for (const tab of ["Secrets", "Agents", "Tokens", "Audit", "Settings"]) {
        await narrow.page.getByRole("tab", { name: tab }).click();
        await narrow.page.getByRole("heading", { name: tab, level: 1 }).waitFor();
        // Wide tables scroll inside their own box; the page itself never scrolls sideways.
        expect(await narrow.page.evaluate(() => document.documentElement.scrollWidth), `${tab} at ${width}px`).toBeLessThanOrEqual(width);
      }
      await done(narrow);
    }
  });

  it.skipIf(chromiumMissing)(`a wrong, a revoked and an agent token are refused with a clear message${skipNote}`, async () => {
    const cp = await openConsole(browser, veil.url);
    const { page } = cp;
    const revoked = await api.tokens.createToken({ role: Role.ADMIN });
    await api.tokens.revokeToken({ tokenId: revoked.tokenId });
    const agent = await api.tokens.createToken({ role: Role.AGENT, agent: "support-bot" });
    for (const [token, message] of [
      ["veil_wrong_token", "This token is not valid: it is wrong, expired or revoked"],
      [revoked.token, "This token is not valid: it is wrong, expired or revoked"],
      [agent.token, "the console needs an admin token"],
    ] as const) {
      await page.getByLabel("Token").fill(token);
      await page.getByRole("button", { name: "Sign in" }).click();
      await expect.poll(() => page.getByRole("alert").textContent()).toContain(message);
      expect(await page.getByRole("tab").count()).toBe(0);
    }
    // The refusals are 401/403 answers the browser logs as failed resources; nothing else may appear.
    cp.errors.splice(0, cp.errors.length, ...cp.errors.filter((e) => !/status of 40[13]/.test(e)));
    await done(cp);
  });

  it.skipIf(chromiumMissing)(`a token revoked mid-session signs the page out with the reason${skipNote}`, async () => {
    const admin = await api.tokens.createToken({ role: Role.ADMIN, description: "revoked mid-session" });
    const cp = await openConsole(browser, veil.url);
    const { page } = cp;
    await signIn(page, admin.token);
    await api.tokens.revokeToken({ tokenId: admin.tokenId });
    // The revocation takes effect at once, so a call the page still had in flight may sign it out
    // before the click lands (the tab is gone then); otherwise the click's call does.
    const signInShown = page.getByRole("button", { name: "Sign in" }).waitFor();
    await Promise.race([page.getByRole("tab", { name: "Tokens" }).click({ timeout: 10_000 }).catch(() => {}), signInShown]);
    await signInShown;
    expect(await page.getByRole("alert").textContent()).toContain("This token is not valid: it is wrong, expired or revoked");
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    cp.errors.splice(0, cp.errors.length, ...cp.errors.filter((e) => !/status of 401/.test(e)));
    await done(cp);
  });

  it.skipIf(chromiumMissing)(`the token lives in sessionStorage only: a reload stays signed in, Sign out forgets it${skipNote}`, async () => {
    const cp = await signedIn();
    const { page } = cp;
    const tabs = await page.getByRole("tab").allTextContents();
    expect(tabs).toEqual(["Secrets", "Agents", "Tokens", "Audit", "Settings"]);
    const storage = () => page.evaluate(() => ({ session: Object.values(sessionStorage), local: localStorage.length, cookie: document.cookie }));
    expect(await storage()).toEqual({ session: [veil.token], local: 0, cookie: "" });
    expect(await cp.context.cookies()).toEqual([]);
    await page.reload();
    await page.getByRole("tab", { name: "Secrets", selected: true }).waitFor();
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByRole("button", { name: "Sign in" }).waitFor();
    expect(await storage()).toEqual({ session: [], local: 0, cookie: "" });
    await page.reload();
    await page.getByRole("button", { name: "Sign in" }).waitFor();
    await done(cp);
  });

  it.skipIf(chromiumMissing)(`Add secret saves a single value with the checked agents; the list shows it${skipNote}`, async () => {
    const cp = await signedIn();
    const { page } = cp;
    await openAddForm(page);
    expect(await page.getByRole("button", { name: "Add secret" }).count()).toBe(0);
    await page.getByRole("textbox", { name: "Name", exact: true }).fill("STRIPE_KEY");
    await page.getByRole("textbox", { name: "Description" }).fill("Stripe live key for billing");
    const pem = `-----BEGIN KEY-----\n${CANARY}\n-----END KEY-----`;
    await page.getByRole("textbox", { name: "Value", exact: true }).fill(pem);
    await page.getByRole("checkbox", { name: "billing-bot", exact: true }).check();
    await page.getByRole("button", { name: "Add", exact: true }).click();
    await page.getByRole("status").filter({ hasText: "Secret STRIPE_KEY added." }).waitFor();

    const got = await api.secrets.getSecret({ name: "STRIPE_KEY" });
    expect(got.text).toBe(pem);
    expect(got.meta?.description).toBe("Stripe live key for billing");
    expect(got.meta?.allowedAgents).toEqual(["billing-bot"]);
    const row = page.getByRole("row").filter({ has: page.getByRole("link", { name: "STRIPE_KEY" }) });
    expect(await row.getByRole("cell").allTextContents()).toEqual(["STRIPE_KEY", "Stripe live key for billing", "Single value", "1", expect.any(String), "billing-bot"]);
    expect(await page.content()).not.toContain(CANARY);
    await done(cp);
  });

  it.skipIf(chromiumMissing)(`Key/value pairs with Add pair, and an agent without a token under Other agents${skipNote}`, async () => {
    const cp = await signedIn();
    const { page } = cp;
    await openAddForm(page);
    await page.getByRole("textbox", { name: "Name", exact: true }).fill("OAUTH_APP");
    await page.getByRole("radio", { name: "Key/value pairs" }).check();
    await page.getByRole("textbox", { name: "Key" }).fill("client_id");
    await page.getByRole("textbox", { name: "Value", exact: true }).fill("id-123");
    await page.getByRole("button", { name: "Add pair" }).click();
    await page.getByRole("textbox", { name: "Key" }).nth(1).fill("client_secret");
    await page.getByRole("textbox", { name: "Value", exact: true }).nth(1).fill(`${CANARY}-kv`);
    await page.getByRole("checkbox", { name: "support-bot", exact: true }).check();
    await page.getByRole("textbox", { name: "Other agents" }).fill("future-bot, later.bot");
    await page.getByText("None checked means every agent of the tenant may use this secret.").waitFor();
    await page.getByRole("button", { name: "Add", exact: true }).click();
    await page.getByRole("status").filter({ hasText: "Secret OAUTH_APP added." }).waitFor();

    const got = await api.secrets.getSecret({ name: "OAUTH_APP" });
    expect(got.fields).toEqual({ client_id: "id-123", client_secret: `${CANARY}-kv` });
    expect([...got.meta!.allowedAgents].sort()).toEqual(["future-bot", "later.bot", "support-bot"]);
    const row = page.getByRole("row").filter({ has: page.getByRole("link", { name: "OAUTH_APP" }) });
    await expect.poll(() => row.getByRole("cell").nth(2).textContent()).toBe("Key/value pairs (client_id, client_secret)");
    await done(cp);
  });

  it.skipIf(chromiumMissing)(`validation shows the server's rule next to the field (instant name check, server checks)${skipNote}`, async () => {
    const cp = await signedIn();
    const { page } = cp;
    await openAddForm(page);
    const name = page.getByRole("textbox", { name: "Name", exact: true });
    await name.fill("1-bad name");
    await page.getByRole("textbox", { name: "Value", exact: true }).fill("x");
    await page.getByRole("button", { name: "Add", exact: true }).click();
    await expect.poll(() => name.getAttribute("aria-invalid")).toBe("true");
    const describedBy = async (field: typeof name) => {
      const ids = ((await field.getAttribute("aria-describedby")) ?? "").split(" ");
      return (await Promise.all(ids.map((id) => page.locator(`[id="${id}"]`).textContent()))).join(" ");
    };
    expect(await describedBy(name)).toContain("must match ^[A-Za-z][A-Za-z0-9_]{0,63}$");

    // Rules only the server checks: its INVALID_ARGUMENT path lands on the field it names.
    await name.fill("VALID_NAME");
    const description = page.getByRole("textbox", { name: "Description" });
    await description.fill("d".repeat(1100));
    await page.getByRole("textbox", { name: "Other agents" }).fill("bad agent!");
    await page.getByRole("button", { name: "Add", exact: true }).click();
    await expect.poll(() => description.getAttribute("aria-invalid")).toBe("true");
    expect(await describedBy(description)).toContain("must be at most 1024 bytes");
    const other = page.getByRole("textbox", { name: "Other agents" });
    expect(await other.getAttribute("aria-invalid")).toBe("true");
    expect(await describedBy(other)).toContain("must be an agent name matching");
    expect(await name.getAttribute("aria-invalid")).toBeNull();
    await expectCode(api.secrets.getSecret({ name: "VALID_NAME" }), Code.NotFound);
    // The 400 answer is logged by the browser as a failed resource; nothing else may appear.
    cp.errors.splice(0, cp.errors.length, ...cp.errors.filter((e) => !/status of 400/.test(e)));
    await done(cp);
  });

  it.skipIf(chromiumMissing)(`detail: Edit access changes the grants and keeps the value; Replace value; changed meanwhile${skipNote}`, async () => {
    await api.secrets.setSecrets({ secrets: [{ name: "DETAIL_ONE", text: `${CANARY}-v1`, description: "kept", metadata: { team: "ops" }, allowedAgents: ["support-bot"] }] });
    const cp = await signedIn();
    const { page } = cp;
    await page.getByRole("link", { name: "DETAIL_ONE" }).click();
    await page.getByRole("heading", { name: "DETAIL_ONE" }).waitFor();
    await page.getByText("Metadata: team").waitFor();

    await page.getByRole("button", { name: "Edit access" }).click();
    expect(await page.getByRole("checkbox", { name: "support-bot", exact: true }).isChecked()).toBe(true);
    await page.getByRole("checkbox", { name: "support-bot", exact: true }).uncheck();
    await page.getByRole("checkbox", { name: "billing-bot", exact: true }).check();
    await page.getByRole("textbox", { name: "Agent readers" }).fill("billing-bot");
    await page.getByRole("button", { name: "Save access" }).click();
    await page.getByRole("status").filter({ hasText: "Access saved." }).waitFor();
    let got = await api.secrets.getSecret({ name: "DETAIL_ONE" });
    expect(got.meta?.allowedAgents).toEqual(["billing-bot"]);
    expect(got.meta?.agentReaders).toEqual(["billing-bot"]);
    expect(got.text).toBe(`${CANARY}-v1`);
    expect(got.meta?.description).toBe("kept");
    expect(got.meta?.metadata).toEqual({ team: "ops" });

    await page.getByRole("button", { name: "Replace value" }).click();
    await page.getByRole("textbox", { name: "Value", exact: true }).fill(`${CANARY}-v2`);
    await page.getByRole("button", { name: "Save value" }).click();
    await page.getByRole("status").filter({ hasText: "Value replaced" }).waitFor();
    got = await api.secrets.getSecret({ name: "DETAIL_ONE" });
    expect(got.text).toBe(`${CANARY}-v2`);
    expect(got.meta?.allowedAgents).toEqual(["billing-bot"]);
    expect(got.meta?.description).toBe("kept");

    // Someone else writes meanwhile: the console's check-and-set refuses to overwrite it.
    await page.getByRole("button", { name: "Replace value" }).click();
    await api.secrets.setSecrets({ secrets: [{ name: "DETAIL_ONE", text: "someone-else", description: "kept", allowedAgents: ["billing-bot"] }] });
    await page.getByRole("textbox", { name: "Value", exact: true }).fill("mine");
    await page.getByRole("button", { name: "Save value" }).click();
    await page.getByRole("alert").filter({ hasText: "changed meanwhile" }).waitFor();
    expect((await api.secrets.getSecret({ name: "DETAIL_ONE" })).text).toBe("someone-else");
    cp.errors.splice(0, cp.errors.length, ...cp.errors.filter((e) => !/status of 409/.test(e)));
    await done(cp);
  });

  it.skipIf(chromiumMissing)(`Reveal shows a value only when pressed, and it is gone from the DOM after leaving${skipNote}`, async () => {
    await api.secrets.setSecrets({ secrets: [{ name: "REVEAL_ME", text: `${CANARY}-r1` }] });
    await api.secrets.setSecrets({ secrets: [{ name: "REVEAL_ME", text: `${CANARY}-r2` }] });
    const cp = await signedIn();
    const { page } = cp;
    await page.getByRole("link", { name: "REVEAL_ME" }).click();
    await page.getByRole("button", { name: "Reveal" }).waitFor();
    expect(await page.content()).not.toContain(CANARY);
    await page.getByRole("button", { name: "Reveal" }).click();
    await page.getByText(`${CANARY}-r2`).waitFor();
    // An older kept version, by number.
    await page.getByRole("button", { name: "Hide" }).click();
    await page.getByLabel("Version").selectOption("1");
    await page.getByRole("button", { name: "Reveal" }).click();
    await page.getByText(`${CANARY}-r1`).waitFor();
    await page.getByRole("link", { name: "All secrets" }).click();
    await page.getByRole("button", { name: "Add secret" }).waitFor();
    expect(await page.content()).not.toContain(CANARY);
    await page.goBack();
    await page.getByRole("button", { name: "Reveal" }).waitFor();
    expect(await page.content()).not.toContain(CANARY);
    // Another console tab hides it too.
    await page.getByRole("button", { name: "Reveal" }).click();
    await page.getByText(`${CANARY}-r2`).waitFor();
    await page.getByRole("tab", { name: "Audit" }).click();
    await page.getByRole("heading", { name: "Audit" }).waitFor();
    expect(await page.content()).not.toContain(CANARY);
    await done(cp);
  });

  it.skipIf(chromiumMissing)(`Delete asks in the page, and pressing Delete twice deletes${skipNote}`, async () => {
    await api.secrets.setSecrets({ secrets: [{ name: "DELETE_ME", text: "x-delete-me" }] });
    const cp = await signedIn();
    const { page } = cp;
    await page.getByRole("link", { name: "DELETE_ME" }).click();
    await page.getByRole("button", { name: "Delete" }).click();
    await page.getByText("Delete DELETE_ME and every version of it, for good?").waitFor();
    await page.getByRole("button", { name: "Cancel" }).click();
    expect((await api.secrets.getSecret({ name: "DELETE_ME" })).text).toBe("x-delete-me");
    await page.getByRole("button", { name: "Delete" }).click();
    await page.getByRole("button", { name: "Delete" }).click();
    await page.getByRole("status").filter({ hasText: "Secret DELETE_ME deleted." }).waitFor();
    await expectCode(api.secrets.getSecret({ name: "DELETE_ME" }), Code.NotFound);
    await done(cp);
  });

  it.skipIf(chromiumMissing)(`names and descriptions render as text: HTML in them creates no element${skipNote}`, async () => {
    const payload = `<img src=x onerror="window.__xss=1"><script>window.__xss=2</script><b>bold</b>`;
    await api.secrets.setSecrets({ secrets: [{ name: "XSS_PROBE", text: "v-xss", description: payload, metadata: { "<i>k</i>": payload } }] });
    const cp = await signedIn();
    const { page } = cp;
    await page.getByRole("searchbox", { name: "Search by name prefix" }).fill("XSS_");
    const row = page.getByRole("row").filter({ has: page.getByRole("link", { name: "XSS_PROBE" }) });
    await expect.poll(() => row.getByRole("cell").nth(1).textContent()).toBe(payload);
    await page.getByRole("link", { name: "XSS_PROBE" }).click();
    await page.getByText("Metadata: <i>k</i>").waitFor();
    expect(await page.evaluate(() => ({ xss: (window as { __xss?: number }).__xss, img: document.querySelectorAll("main img, main b, main i, main script").length }))).toEqual({ xss: undefined, img: 0 });
    await done(cp);
  });

  it.skipIf(chromiumMissing)(`search by prefix and paging with Next/Previous over a few hundred secrets${skipNote}`, async () => {
    const names = Array.from({ length: 230 }, (_, i) => `PAGE_${String(i).padStart(3, "0")}`);
    await api.secrets.setSecrets({ secrets: names.map((name) => ({ name, text: `v-${name}` })) });
    const cp = await signedIn();
    const { page } = cp;
    await page.getByRole("searchbox", { name: "Search by name prefix" }).fill("PAGE_");
    const firstNames = () => page.getByRole("row").getByRole("link").allTextContents();
    await expect.poll(async () => (await firstNames())[0]).toBe("PAGE_000");
    expect(await firstNames()).toEqual(names.slice(0, 50));
    const seen: string[] = [];
    for (let i = 0; i < 5; i++) {
      seen.push(...(await firstNames()));
      if (i < 4) {
        const before = (await firstNames())[0];
        await page.getByRole("button", { name: "Next" }).click();
        await expect.poll(async () => (await firstNames())[0]).not.toBe(before);
      }
    }
    expect(seen).toEqual(names);
    expect(await page.getByRole("button", { name: "Next" }).isDisabled()).toBe(true);
    await page.getByText("Showing 201–230").waitFor();
    await page.getByRole("button", { name: "Previous" }).click();
    await expect.poll(async () => (await firstNames())[0]).toBe("PAGE_150");
    await done(cp);
  });

  it.skipIf(chromiumMissing)(`no secret value created in these tests reached the server's logs${skipNote}`, () => {
    expect(veil.logs.length).toBeGreaterThan(0);
    expect(veil.logs.join("\n")).not.toContain(CANARY);
  });
});
