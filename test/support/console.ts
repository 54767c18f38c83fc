// Console test helpers: the console built into a temp dir (as `npm run build` does), Chromium, and a signed-in page that records errors.
import { existsSync } from "node:fs";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { buildConsole } from "../../bin/build-console.mjs";
import { tempDir } from "./temp-dir.js";

export const CHROMIUM = "/usr/bin/chromium";
export const chromiumMissing = !existsSync(CHROMIUM);
/** The skip reason rides in the test names, so a skipped run says why instead of passing silently. */
export const skipNote = chromiumMissing ? ` (skipped: chromium not installed at ${CHROMIUM})` : "";

/** Builds the console into a fresh temp dir (~100 ms with esbuild); the server takes it with --console-dir. */
export async function buildConsoleForTest(): Promise<{ dir: string; cleanup: () => void }> {
  const out = tempDir("veil-console-");
  await buildConsole(out.path);
  return { dir: out.path, cleanup: out.cleanup };
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/** A page in its own context, with every console error, uncaught exception and CSP violation it produced. */
export interface ConsolePage {
  context: BrowserContext;
  page: Page;
  errors: string[];
  close(): Promise<void>;
}

/** Opens the console at `url` in a fresh context (laptop width unless told), recording errors. */
export async function openConsole(browser: Browser, url: string, options: { width?: number; height?: number } = {}): Promise<ConsolePage> {
  const context = await browser.newContext({ viewport: { width: options.width ?? 1280, height: options.height ?? 800 } });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("console", (msg) => {
    if (msg.type() === "error") errors.push(`console: ${msg.text()}`);
  });
  page.on("pageerror", (error) => errors.push(`uncaught: ${error.message}`));
  await page.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`));
  });
  await page.goto(url);
  return { context, page, errors, close: () => context.close() };
}

/** Signs in through the form, as a person would, and waits for the tabs. */
export async function signIn(page: Page, token: string): Promise<void> {
  await page.getByLabel("Token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("tab", { name: "Secrets" }).waitFor();
}
