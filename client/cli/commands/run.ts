// `veil run`: runs one command through a conversation and streams its masked output, like `op run`.
import { Inject, NetworkMode } from "../../index.js";
import { type Command, keyValues, parse, parseDuration } from "../command.js";
import { CONNECTION_HELP, CONNECTION_OPTIONS, connect } from "../connection.js";
import { type EnvEntry, readEnvFiles } from "../env-file.js";
import { UsageError } from "../io.js";
import { parseEnv } from "../local-secrets.js";
import { runLocalRequest } from "./run-local.js";
import { runRemote } from "./run-remote.js";


const help = `Usage: veil run [options] -- COMMAND [ARG...]
       veil run --local [--secret NAME ...] [--env-file FILE] [--no-masking] -- COMMAND [ARG...]

Runs COMMAND on the Veil server with the named secrets injected as environment
variables, streams its output here with every secret value masked, and exits with
its exit code (124 when it timed out, 125 when Veil itself failed, e.g. a server
that cannot run commands because bubblewrap is not usable there).

One argument is shell text, so quote it to let the server expand the secrets:
  veil run --secret GITHUB_TOKEN -- 'curl -H "Authorization: Bearer $GITHUB_TOKEN" https://api.github.com/user'
Several arguments are quoted one by one, as exec would:
  veil run --secret DB -- printenv DB_PASSWORD

With --local, COMMAND runs here instead, like \`op run\`: in the current directory, with
your environment plus the secrets and --env/--env-file variables, exec'd as given (no
shell: use sh -c '...' for one). Veil reads each secret with GetSecret first, so you must
be allowed to read it (an admin token, or an agent listed with --reader); a refusal runs
nothing. stdout and stderr are masked by Veil's masker here, which needs pipes: the
command sees a pipe, not your terminal, on stdout/stderr (stdin stays your terminal).
--no-masking gives it your terminal and shows values as printed. SIGINT, SIGTERM and
SIGHUP are passed to the command; veil exits with its code (128+N when signal N killed
it: 130 for SIGINT, 143 for SIGTERM).

On the server, COMMAND's stdin is ours when it is not a terminal (veil run -- wc -l < file,
or a pipe), read until its end; from a terminal only with --stdin (lines as typed, Ctrl-D
ends them), else it reads nothing. SIGINT (Ctrl-C), SIGTERM and SIGHUP are sent to the
running command, as a terminal would; veil exits with the command's code (130 when it
died of SIGINT).

Options:
  --local              run COMMAND on this machine (see above)
  --stdin              send stdin to the command on the server also from a terminal
  --no-stdin           never send stdin (the command reads nothing, as before)
  --no-masking         with --local: do not mask output (prints a warning)
  --env-file FILE      variables from a dotenv file (repeatable; later files win, --env
                       wins over files): KEY=VALUE lines, 'export KEY=...', # comments,
                       '...' literal, "..." with \\n \\t \\" \\\\ \\$ escapes, no $VAR
                       expansion. A value may be a reference, veil://NAME or
                       veil://NAME/FIELD, or hold {{ secrets.NAME[.FIELD] }}; with --local
                       Veil resolves them here, otherwise the server does
  --secret NAME        inject this secret (repeatable)
  --session S          resolve secrets in session S, over the tenant-wide ones
  --agent NAME         act as this agent (its grants apply)
  --referenced         inject only the secrets the command text references
  --env KEY=VALUE      a variable (repeatable); the value may be a reference, as in
                       --env-file
  --cwd DIR            working directory, relative to the conversation's workspace
  --timeout DURATION   e.g. 30s, 5m (default: the server's)
  --network MODE       the sandbox's network: none (default), egress (only through
                       Veil's egress gateway, which swaps placeholders for values on
                       each secret's own hosts; agent tokens may), host (unrestricted;
                       admin tokens or --allow-network agent tokens). A bare
                       --network means host, as before.
  --egress-allow HOST  with --network egress: also reach HOST without substitution
                       (host, host:port or *.domain; repeatable)
${CONNECTION_HELP}`;

const NETWORK_MODES = ["none", "egress", "host"] as const;
type NetworkChoice = (typeof NETWORK_MODES)[number];

/**
 * Takes `--network MODE` / `--network=MODE` out of argv. A bare `--network` (followed by
 * another option or nothing) keeps its old meaning, unrestricted network, so scripts that
 * used it still work.
 */
function takeNetwork(argv: readonly string[]): { argv: string[]; network: NetworkChoice } {
  const rest: string[] = [];
  let network: NetworkChoice = "none";
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg.startsWith("--network=")) {
      const mode = arg.slice("--network=".length);
      if (!(NETWORK_MODES as readonly string[]).includes(mode)) throw new UsageError(`--network: must be none, egress or host, not ${JSON.stringify(mode)}`);
      network = mode as NetworkChoice;
    } else if (arg === "--network") {
      const next = argv[i + 1];
      if (next !== undefined && (NETWORK_MODES as readonly string[]).includes(next)) {
        network = next as NetworkChoice;
        i++;
      } else network = "host";
    } else rest.push(arg);
  }
  return { argv: rest, network };
}

/** Quotes one argument for bash. */
function quote(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

/** The flags of `veil run`, parsed once. */
const RUN_OPTIONS = {
  ...CONNECTION_OPTIONS,
  secret: { type: "string", multiple: true },
  session: { type: "string" },
  agent: { type: "string" },
  referenced: { type: "boolean" },
  env: { type: "string", multiple: true },
  "env-file": { type: "string", multiple: true },
  local: { type: "boolean" },
  "no-masking": { type: "boolean" },
  stdin: { type: "boolean" },
  "no-stdin": { type: "boolean" },
  cwd: { type: "string" },
  timeout: { type: "string" },
  "egress-allow": { type: "string", multiple: true },
} as const;

/** --env-file entries, then --env ones; a later definition of a key replaces an earlier one. */
function envEntries(files: readonly string[], flags: readonly string[]): EnvEntry[] {
  const byKey = new Map<string, EnvEntry>();
  const fromFlags = Object.entries(keyValues(flags, "--env")).map(([key, value]) => ({ key, value, where: "--env" }));
  for (const entry of [...readEnvFiles(files), ...fromFlags]) {
    byKey.delete(entry.key);
    byKey.set(entry.key, entry);
  }
  return [...byKey.values()];
}

/** Flags that only mean something for a command on the server. */
const REMOTE_ONLY = ["agent", "referenced", "cwd", "timeout", "egress-allow", "stdin", "no-stdin"] as const;

export const runCommand: Command = {
  name: "run",
  summary: "run a command with secrets injected; output masked",
  help,
  async run(argv) {
    const dashdash = argv.indexOf("--");
    const { argv: own, network } = takeNetwork(dashdash === -1 ? argv : argv.slice(0, dashdash));
    const words = dashdash === -1 ? [] : argv.slice(dashdash + 1);
    const { values, positionals } = parse(own, RUN_OPTIONS);
    if (values["egress-allow"] !== undefined && network !== "egress") throw new UsageError("--egress-allow: only with --network egress");
    if (positionals.length > 0 || words.length === 0) throw new UsageError("expected the command after --, e.g. veil run --secret KEY -- 'echo $KEY'");
    if (values["no-masking"] && !values.local) throw new UsageError("--no-masking: only with --local (the server always masks)");
    const env = envEntries(values["env-file"] ?? [], values.env ?? []);
    // Syntax first, before any connection: the error names the file and line (the server resolves remote references).
    parseEnv(env);
    if (values.local) {
      const remoteOnly = REMOTE_ONLY.find((flag) => values[flag] !== undefined);
      if (remoteOnly !== undefined || network !== "none") throw new UsageError(`--${remoteOnly ?? "network"}: not with --local (the command runs here)`);
      const client = await connect(values);
      try {
        return await runLocalRequest(client, { words, secrets: values.secret ?? [], session: values.session ?? "", env, masking: !values["no-masking"] });
      } catch (error) {
        throw error instanceof UsageError ? error : Object.assign(error as Error, { runnerFailed: true });
      }
    }
    const command = words.length === 1 ? words[0]! : words.map(quote).join(" ");
    const timeoutMs = values.timeout === undefined ? 0 : parseDuration(values.timeout, "--timeout") * 1000;
    if (values.stdin && values["no-stdin"]) throw new UsageError("--stdin and --no-stdin: choose one");
    // Piped input goes to the command; a terminal does not unless asked (a command that reads it would wait for typing).
    const forwardStdin = values.stdin === true || (!values["no-stdin"] && !process.stdin.isTTY);
    const client = await connect(values);
    const request = {
      session: values.session ?? "",
      agent: values.agent ?? "",
      secrets: values.secret ?? [],
      commands: [command],
      env: Object.fromEntries(env.map((e) => [e.key, e.value])),
      workingDir: values.cwd ?? "",
      inject: values.referenced ? Inject.REFERENCED : Inject.DECLARED,
      timeoutMs,
      network: network === "host",
      networkMode: network === "egress" ? NetworkMode.EGRESS : NetworkMode.UNSPECIFIED,
      egressAllow: values["egress-allow"] ?? [],
    };
    return runRemote(client, request, forwardStdin);
  },
};
