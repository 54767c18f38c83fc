// `veil settings get|set`: the tenant's agent settings (LLM model, base URL, API key, options); the key only ever redacted.
import type { AgentSettings } from "../../index.js";
import { type Command, group, keyValues, parse } from "../command.js";
import { CONNECTION_HELP, CONNECTION_OPTIONS, connect } from "../connection.js";
import { EXIT, readSecretValue, table, UsageError } from "../io.js";

/** The settings as scripts see them: the API key stays redacted (`**********`) or absent. */
function settingsJson(settings: AgentSettings | undefined) {
  const llm = settings?.llm;
  return {
    llm: {
      model: llm?.model ?? null,
      baseUrl: llm?.baseUrl ?? null,
      apiKey: llm?.apiKey ?? null,
      apiKeyEgressHosts: llm?.apiKeyEgressHosts ?? null,
    },
    options: settings?.options ?? {},
  };
}

function print(settings: AgentSettings | undefined, asJson: boolean | undefined) {
  const j = settingsJson(settings);
  if (asJson) {
    process.stdout.write(`${JSON.stringify(j)}\n`);
    return;
  }
  const rows = [
    ["llm.model", j.llm.model ?? "-"],
    ["llm.base_url", j.llm.baseUrl ?? "-"],
    ["llm.api_key", j.llm.apiKey ?? "-"],
    ["llm.api_key_egress_hosts", j.llm.apiKeyEgressHosts ?? "-"],
    ...Object.entries(j.options)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => [`options.${k}`, v]),
  ];
  process.stdout.write(`${table([["SETTING", "VALUE"], ...rows])}\n`);
}

const get: Command = {
  name: "get",
  summary: "print the settings (the API key redacted)",
  help: `Usage: veil settings get [--json]

Prints the tenant's agent settings. The API key is shown as ********** when set; its
value never leaves the server (conversations get it with --inject-settings).

Options:
  --json     {llm: {model, baseUrl, apiKey, apiKeyEgressHosts}, options} (null = unset)
${CONNECTION_HELP}`,
  async run(argv) {
    const { values } = parse(argv, { ...CONNECTION_OPTIONS, json: { type: "boolean" } }, false);
    const { settings } = await (await connect(values)).settings.getSettings({});
    print(settings, values.json);
    return EXIT.ok;
  },
};

const set: Command = {
  name: "set",
  summary: "change some settings; the API key is read from stdin",
  help: `Usage: veil settings set [options] [< api-key]

Changes only what is given; the rest stays. Prints the settings afterwards (redacted).

Options:
  --model M              the LLM model ("" clears it)
  --base-url URL         the LLM base URL ("" clears it)
  --api-key              read the API key from stdin (or a hidden prompt on a terminal);
                         never from the command line. An empty value clears it
  --api-key-egress-hosts H   hosts the key belongs to, comma-separated ("" clears them)
  --option KEY=VALUE     a free option (repeatable; KEY= removes it)
  --json                 print the settings afterwards as JSON
${CONNECTION_HELP}`,
  async run(argv) {
    const { values } = parse(
      argv,
      {
        ...CONNECTION_OPTIONS,
        model: { type: "string" },
        "base-url": { type: "string" },
        "api-key": { type: "boolean" },
        "api-key-egress-hosts": { type: "string" },
        option: { type: "string", multiple: true },
        json: { type: "boolean" },
      },
      false,
    );
    const llm = {
      ...(values.model !== undefined ? { model: values.model } : {}),
      ...(values["base-url"] !== undefined ? { baseUrl: values["base-url"] } : {}),
      ...(values["api-key-egress-hosts"] !== undefined ? { apiKeyEgressHosts: values["api-key-egress-hosts"] } : {}),
    };
    const options = keyValues(values.option ?? [], "--option");
    if (Object.keys(llm).length === 0 && Object.keys(options).length === 0 && !values["api-key"]) {
      throw new UsageError("nothing to set: give --model, --base-url, --api-key, --api-key-egress-hosts or --option");
    }
    const client = await connect(values);
    const apiKey = values["api-key"] ? { apiKey: await readSecretValue("the LLM API key") } : {};
    const { settings } = await client.settings.updateSettings({ settings: { llm: { ...llm, ...apiKey }, options } });
    print(settings, values.json);
    return EXIT.ok;
  },
};

/** The `veil settings` group. */
export const settingsCommand = group("settings", "read and change the tenant's agent settings (LLM key redacted)", [get, set]);
