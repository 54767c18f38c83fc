// `veil login`: saves a named profile (URL, token file, CA file) so later commands need no connection flags.
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { type Command, parse } from "../command.js";
import { checkUrl } from "../connection.js";
import { EXIT, promptHidden, readStdin, UsageError } from "../io.js";
import { configDir, configPath, readConfig, writeConfig, writePrivate } from "../profiles.js";

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** The token for a new profile: a given file stays where it is; one typed or piped in gets its own 0600 file. */
async function tokenFileFor(profile: string, flag: string | undefined): Promise<string> {
  if (flag !== undefined) {
    const file = resolve(flag);
    if (!existsSync(file)) throw new UsageError(`--token-file: ${file} does not exist`);
    return file;
  }
  const token = (process.stdin.isTTY ? await promptHidden("Token (input hidden): ") : await readStdin()).trim();
  if (token === "") throw new UsageError("no token: pipe it on stdin, type it at the prompt, or pass --token-file FILE");
  const file = join(configDir(), "tokens", `${profile}.token`);
  writePrivate(file, `${token}\n`);
  return file;
}

function list(asJson: boolean | undefined): number {
  const config = readConfig();
  const rows = Object.entries(config.profiles).map(([name, p]) => ({ name, current: name === config.current, ...p }));
  if (asJson) for (const row of rows) process.stdout.write(`${JSON.stringify(row)}\n`);
  else for (const r of rows) process.stdout.write(`${r.current ? "*" : " "} ${r.name}  ${r.url}${r.caFile ? `  ca ${r.caFile}` : ""}\n`);
  return EXIT.ok;
}

export const loginCommand: Command = {
  name: "login",
  summary: "save a server, its token and CA as a named profile",
  help: `Usage: veil login --url URL [--profile NAME] [--token-file FILE] [--ca-file FILE] [< token]
       veil login --list [--json]

Saves a profile in $XDG_CONFIG_HOME/veil/config.json (default ~/.config/veil; mode 0600)
and makes it the current one: later commands use its URL and token unless --url, --token,
$VEIL_URL or $VEIL_TOKEN say otherwise, and --profile NAME (or $VEIL_PROFILE) picks another.
The token is read from stdin (or a hidden prompt), never from the command line, and kept in
its own 0600 file beside the config; --token-file saves the path of an existing file instead.

Options:
  --url URL          the server (http:// or https://)
  --profile NAME     the profile to save (default: default)
  --token-file FILE  use this token file rather than reading a token
  --ca-file FILE     CA bundle (PEM) to trust for https:// servers
  --list             list the profiles (* = current)
  --json             with --list: one JSON object per profile; else the saved profile`,
  async run(argv) {
    const { values } = parse(
      argv,
      { url: { type: "string" }, profile: { type: "string" }, "token-file": { type: "string" }, "ca-file": { type: "string" }, list: { type: "boolean" }, json: { type: "boolean" } },
      false,
    );
    if (values.list) return list(values.json);
    if (values.url === undefined) throw new UsageError("--url: required (the server to log in to)");
    const url = checkUrl(values.url, "--url");
    const name = values.profile ?? "default";
    if (!NAME.test(name)) throw new UsageError("--profile: 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit");
    const caFile = values["ca-file"] !== undefined ? resolve(values["ca-file"]) : undefined;
    if (caFile !== undefined && !existsSync(caFile)) throw new UsageError(`--ca-file: ${caFile} does not exist`);
    const config = readConfig();
    const tokenFile = await tokenFileFor(name, values["token-file"]);
    const profile = { url, tokenFile, ...(caFile !== undefined ? { caFile } : {}) };
    writeConfig({ ...config, current: name, profiles: { ...config.profiles, [name]: profile } });
    if (values.json) process.stdout.write(`${JSON.stringify({ name, current: true, ...profile })}\n`);
    else process.stderr.write(`profile ${name} saved to ${configPath()} (now the current one)\n`);
    return EXIT.ok;
  },
};
