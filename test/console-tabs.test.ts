// The web console's Agents, Tokens, Audit and Settings tabs, keyboard use of the tab strip, and an axe-core scan of every view, in real Chromium.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { Code } from "@connectrpc/connect";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVeilClient, Expose, Role, type VeilClient } from "../client/index.js";
import { buildConsoleForTest, type ConsolePage, chromiumMissing, launchChromium, openConsole, signIn, skipNote } from "./support/console.js";
import { expectCode } from "./support/expect-code.js";
import { startTestServer, type TestServer } from "./support/server.js";

const CANARY = `console-tabs-canary-${Math.random().toString(36).slice(2)}`;
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[] }[];
}

/** Runs axe-core in the page (CDP evaluation is not subject to the page's CSP) and returns serious and critical violations. */
async function seriousViolations(page: Page): Promise<string[]> {
  await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run: (ctx: Document) => Promise<{ violations: AxeViolation[] }> } }).axe;
    return (await axe.run(document)).violations;
  });
  return violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => `${v.id}: ${v.help} at ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
}

describe("web console: agents, tokens, audit, settings, accessibility", () => {
  let veil: TestServer;
  let built: { dir: string; cleanup: () => void };
  let browser: Browser;
  let api: VeilClient;

  beforeAll(async () => {
    if (chromiumMissing) return;
    built = await buildConsoleForTest();
    [veil, browser] = await Promise.all([startTestServer({ extraFlags: ["--console-dir", built.dir] }), launchChromium()]);
    api = await createVeilClient({ baseUrl: veil.url, token: veil.token, protocol: "connect" });
    await api.tokens.createToken({ role: Role.AGENT, agent: "support-bot" });
    await api.secrets.setSecrets({
      secrets: [
        { name: "SHARED_KEY", text: `${CANARY}-shared`, description: "every agent" },
        { name: "SUPPORT_ONLY", text: `${CANARY}-support`, description: "support reads it", allowedAgents: ["support-bot"], agentReaders: ["support-bot"] },
        { name: "BILLING_ONLY", text: `${CANARY}-billing`, allowedAgents: ["billing-bot"] },
      ],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await veil?.close();
    built?.cleanup();
  });

  async function signedIn(): Promise<ConsolePage> {
    const cp = await openConsole(browser, veil.url);
    await signIn(cp.page, veil.token);
    return cp;
  }

  async function done(cp: ConsolePage): Promise<void> {
    expect(cp.errors).toEqual([]);
    await cp.close();
  }

  it.skipIf(chromiumMissing)(`the tab strip works with the keyboard (arrows, Home, End) and marks the selected tab${skipNote}`, async () => {
    const cp = await signedIn();
    const { page } = cp;
    const selected = () => page.getByRole("tab", { selected: true }).textContent();
    await page.getByRole("tab", { name: "Secrets" }).focus();
    await page.keyboard.press("ArrowRight");
    await expect.poll(selected).toBe("Agents");
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe("Agents");
    await page.keyboard.press("End");
    await expect.poll(selected).toBe("Settings");
    await page.keyboard.press("ArrowRight");
    await expect.poll(selected).toBe("Secrets");
    await page.keyboard.press("ArrowLeft");
    await expect.poll(selected).toBe("Settings");
    await page.keyboard.press("Home");
    await expect.poll(selected).toBe("Secrets");
    expect(await page.getByRole("tabpanel").getAttribute("aria-labelledby")).toBe(await page.getByRole("tab", { name: "Secrets" }).getAttribute("id"));
    // Only the selected tab is in the Tab order.
    expect(await page.locator('[role="tab"][tabindex="0"]').count()).toBe(1);
    await done(cp);
  });

  it.skipIf(chromiumMissing)(`Agents: every agent from tokens and grants; one agent's secrets, with read and every-agent marked${skipNote}`, async () => {
    const cp = await signedIn();
    const { page } = cp;
    await page.getByRole("tab", { name: "Agents" }).click();
    const names = () => page.getByRole("row").getByRole("link").allTextContents();
    await expect.poll(names).toEqual(expect.arrayContaining(["support-bot", "billing-bot"]));
    await page.getByRole("link", { name: "support-bot" }).click();
    const access = page.getByRole("region", { name: "Secrets support-bot may use" });
    const rowOf = (name: string) => access.getByRole("row").filter({ has: page.getByRole("cell", { name, exact: true }) });
    await rowOf("SUPPORT_ONLY").waitFor();
    expect(await rowOf("SUPPORT_ONLY").getByRole("cell").allTextContents()).toEqual(["SUPPORT_ONLY", "support reads it", "tenant-wide", "inject and read", "by name"]);
    expect(await rowOf("SHARED_KEY").getByRole("cell").allTextContents()).toEqual(["SHARED_KEY", "every agent", "tenant-wide", "inject", "every agent"]);
    expect(await rowOf("BILLING_ONLY").count()).toBe(0);
    await done(cp);
  });

  it.skipIf(chromiumMissing)(`Tokens: create an agent token (shown once, Copy), it works; Revoke makes it UNAUTHENTICATED${skipNote}`, async () => {
    const cp = await signedIn();
    const { page } = cp;
    await cp.context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: veil.url });
    await page.getByRole("tab", { name: "Tokens" }).click();
    await page.getByRole("textbox", { name: "Agent" }).fill("deploy-bot");
    await page.getByLabel("Expires after").selectOption({ label: "1 day" });
    await page.getByRole("textbox", { name: "Description" }).fill("deploys from CI");
    await page.getByRole("checkbox", { name: /Allow network/ }).check();
    await page.getByRole("button", { name: "Create token" }).click();
    const field = page.getByRole("textbox", { name: /New token for deploy-bot/ });
    await field.waitFor();
    expect(await field.getAttribute("readonly")).not.toBeNull();
    const token = await field.inputValue();
    await page.getByText("it will not be shown again").waitFor();
    await page.getByRole("button", { name: "Copy" }).click();
    await page.getByRole("status").filter({ hasText: "Copied" }).waitFor();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(token);

    const agent = await createVeilClient({ baseUrl: veil.url, token, protocol: "connect" });
    // A working agent token: admin calls are PERMISSION_DENIED, not UNAUTHENTICATED.
    await expectCode(agent.tokens.listTokens({}), Code.PermissionDenied);
    const info = (await api.tokens.listTokens({})).tokens.find((t) => t.agent === "deploy-bot")!;
    expect(info).toMatchObject({ role: Role.AGENT, description: "deploys from CI", allowNetwork: true, revoked: false });
    const ttl = Number(info.expiresAt!.seconds - info.createdAt!.seconds);
    expect(ttl).toBe(86400);

    await page.getByRole("button", { name: "Done" }).click();
    expect(await page.content()).not.toContain(token);
    const row = page.getByRole("row").filter({ hasText: info.tokenId });
    await row.getByRole("button", { name: "Revoke" }).click();
    await row.getByRole("button", { name: "Revoke" }).click();
    await page.getByRole("status").filter({ hasText: `Token ${info.tokenId} revoked.` }).waitFor();
    await expect.poll(() => row.getByRole("cell").nth(6).textContent()).toBe("revoked");
    await expectCode(agent.tokens.listTokens({}), Code.Unauthenticated);
    await done(cp);
  });

  it.skipIf(chromiumMissing)(`Audit: the trail with filters (secret, action, since) and paging${skipNote}`, async () => {
    await api.secrets.setSecrets({ secrets: Array.from({ length: 60 }, (_, i) => ({ name: `AUDIT_${i}`, text: `audit-${i}` })) });
    await api.secrets.getSecret({ name: "AUDIT_7" });
    const cp = await signedIn();
    const { page } = cp;
    await page.getByRole("tab", { name: "Audit" }).click();
    const cells = (col: number) => page.locator("tbody tr").locator(`td:nth-child(${col})`).allTextContents();
    await page.getByRole("textbox", { name: "Secret" }).fill("AUDIT_7");
    await page.getByRole("button", { name: "Apply filters" }).click();
    await expect.poll(() => cells(3)).toEqual(["AUDIT_7", "AUDIT_7"]);
    expect(await cells(2)).toEqual(["secret.set", "secret.get"]);
    await page.getByRole("combobox", { name: "Action" }).fill("secret.get");
    await page.getByRole("button", { name: "Apply filters" }).click();
    await expect.poll(() => cells(2)).toEqual(["secret.get"]);

    await page.getByRole("textbox", { name: "Secret" }).fill("");
    await page.getByRole("combobox", { name: "Action" }).fill("secret.set");
    await page.getByRole("button", { name: "Apply filters" }).click();
    await expect.poll(async () => (await cells(2)).length).toBe(50);
    await page.getByRole("button", { name: "Next" }).click();
    await expect.poll(async () => (await cells(2)).length).toBeLessThan(50);
    await page.getByRole("button", { name: "Previous" }).click();
    await expect.poll(async () => (await cells(2)).length).toBe(50);

    await page.getByLabel("Since").fill("2999-01-01T00:00");
    await page.getByRole("button", { name: "Apply filters" }).click();
    await page.getByText("No events match.").waitFor();
    expect(await page.content()).not.toContain(CANARY);
    await done(cp);
  });

  it.skipIf(chromiumMissing)(`Settings: model, base URL and a write-only API key that never reaches the page${skipNote}`, async () => {
    const cp = await signedIn();
    const { page } = cp;
    await page.getByRole("tab", { name: "Settings" }).click();
    const key = page.getByRole("textbox", { name: "API key" });
    await expect.poll(() => key.getAttribute("placeholder")).toBe("not set");
    await page.getByRole("textbox", { name: "Model" }).fill("gpt-test");
    await page.getByRole("textbox", { name: "Base URL" }).fill("https://llm.example.com/v1");
    await key.fill(`${CANARY}-apikey`);
    await page.getByRole("button", { name: "Save settings" }).click();
    await page.getByRole("status").filter({ hasText: "Settings saved." }).waitFor();
    await expect.poll(() => key.getAttribute("placeholder")).toBe("**********");
    expect(await key.inputValue()).toBe("");
    expect(await page.content()).not.toContain(CANARY);
    let llm = (await api.settings.getSettings({ expose: Expose.REDACTED })).settings!.llm!;
    expect(llm).toMatchObject({ model: "gpt-test", baseUrl: "https://llm.example.com/v1", apiKey: "**********" });
    const sealed = (await api.settings.getSettings({ expose: Expose.SEALED })).settings!.llm!.apiKey!;

    // Saving with the key field empty changes the rest and keeps the key (its sealed form opens to the same key).
    await page.getByRole("textbox", { name: "Model" }).fill("gpt-other");
    await page.getByRole("button", { name: "Save settings" }).click();
    await expect.poll(async () => (await api.settings.getSettings({ expose: Expose.REDACTED })).settings!.llm!.model).toBe("gpt-other");
    llm = (await api.settings.getSettings({ expose: Expose.REDACTED })).settings!.llm!;
    expect(llm.apiKey).toBe("**********");
    expect(sealed.startsWith("veil:sealed:v1:")).toBe(true);
    expect(await page.content()).not.toContain(CANARY);
    expect(veil.logs.join("\n")).not.toContain(CANARY);
    await done(cp);
  });

  it.skipIf(chromiumMissing)(`axe-core finds no serious or critical violation on sign-in, each tab, the add form and a detail view${skipNote}`, async () => {
    const cp = await openConsole(browser, veil.url);
    const { page } = cp;
    const report: Record<string, string[]> = {};
    report["sign-in"] = await seriousViolations(page);
    await signIn(page, veil.token);
    for (const tab of ["Secrets", "Agents", "Tokens", "Audit", "Settings"]) {
      await page.getByRole("tab", { name: tab }).click();
      await page.getByRole("heading", { name: tab, level: 1 }).waitFor();
      await page.getByRole("status").first().waitFor({ state: "detached" }).catch(() => {});
      report[tab] = await seriousViolations(page);
    }
    await page.getByRole("tab", { name: "Secrets" }).click();
    await page.getByRole("button", { name: "Add secret" }).click();
    await page.getByRole("radio", { name: "Key/value pairs" }).check();
    report["add form"] = await seriousViolations(page);
    await page.getByRole("button", { name: "Cancel" }).click();
    await page.getByRole("searchbox", { name: "Search by name prefix" }).fill("SUPPORT");
    await page.getByRole("link", { name: "SUPPORT_ONLY" }).click();
    await page.getByRole("button", { name: "Edit access" }).click();
    report["detail + edit access"] = await seriousViolations(page);
    expect(report).toEqual(Object.fromEntries(Object.keys(report).map((k) => [k, []])));
    await done(cp);
  });
});
