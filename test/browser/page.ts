// Browser page entry for test/browser.test.ts: drives Veil over Connect-Web from a foreign origin and reports what it saw.
import { ConnectError } from "@connectrpc/connect";
import { collect, createWebVeilClient } from "../../client/web.js";

/** What one protocol run observed, as plain JSON so it survives page.evaluate. */
export interface PageRunResult {
  protocol: "connect" | "grpc-web";
  setVersion: number;
  listedNames: string[];
  /** Whether the canary value appears anywhere in the listing (it must not: names only). */
  listedHasValue: boolean;
  gotText: string | null;
  started: { secrets: string[]; unmaskedSecrets: string[] } | null;
  eventCases: string[];
  stdout: string;
  stderr: string;
  exitCode: number | null;
  /** The page's own origin, to prove the calls were cross-origin. */
  origin: string;
  /** GetSecret of a name never set: the status code must cross CORS intact. */
  missingCode: number | null;
  error?: { code: number | null; message: string };
}

async function run(options: { baseUrl: string; token: string; protocol: "connect" | "grpc-web"; name: string; value: string }): Promise<PageRunResult> {
  const { protocol, name, value } = options;
  const result: PageRunResult = {
    protocol,
    setVersion: 0,
    listedNames: [],
    listedHasValue: false,
    gotText: null,
    started: null,
    eventCases: [],
    stdout: "",
    stderr: "",
    exitCode: null,
    origin: location.origin,
    missingCode: null,
  };
  try {
    const veil = createWebVeilClient({ baseUrl: options.baseUrl, token: options.token, protocol });
    const set = await veil.secrets.setSecrets({ secrets: [{ name, text: value, description: "browser canary" }] });
    result.setVersion = Number(set.secrets[0]?.version ?? 0);
    const listed = await veil.secrets.listSecrets({ namePrefix: name });
    result.listedNames = listed.secrets.map((s) => s.name);
    // A listing is metadata only: if the value shows up anywhere in it, that is a leak.
    result.listedHasValue = JSON.stringify(listed.secrets, (_k, v) => (typeof v === "bigint" ? v.toString() : v)).includes(value);
    const got = await veil.secrets.getSecret({ name });
    result.gotText = got.text ?? null;
    try {
      await veil.secrets.getSecret({ name: `${name}_NEVER_SET` });
    } catch (e) {
      // gRPC-Web reads grpc-status from headers: only exposed headers let it see the code.
      result.missingCode = ConnectError.from(e).code;
    }
    // The client's own collect() gathers the stream in the browser too (no Node Buffer in it).
    const events: string[] = [];
    const run = await collect(
      (async function* () {
        for await (const e of veil.startConversation({ secrets: [name], commands: [`echo "$${name}"`], endWhenDone: true })) {
          events.push(e.event.case ?? "none");
          yield e;
        }
      })(),
    );
    result.eventCases.push(...events);
    if (run.started) result.started = { secrets: [...run.started.secrets], unmaskedSecrets: [...run.started.unmaskedSecrets] };
    result.stdout = run.commands[0]?.stdoutText ?? "";
    result.stderr = run.commands[0]?.stderrText ?? "";
    result.exitCode = run.commands[0]?.exitCode ?? null;
  } catch (e) {
    const err = ConnectError.from(e);
    result.error = { code: err.code, message: err.message };
  }
  return result;
}

declare global {
  interface Window {
    veilRun: typeof run;
  }
}

window.veilRun = run;
