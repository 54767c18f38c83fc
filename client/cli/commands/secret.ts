// `veil secret set|ls|get|rm`: manage secrets; values come from stdin, never from the command line.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { type SecretMeta, ValueKind } from "../../index.js";
import { type Command, group, keyValues, parse, parseDuration } from "../command.js";
import { CONNECTION_HELP, CONNECTION_OPTIONS, connect } from "../connection.js";
import { EXIT, readSecretValue, table, UsageError } from "../io.js";

const session = { session: { type: "string" } } as const;
const json = { json: { type: "boolean" } } as const;

function one(positionals: string[], what: string): string {
  if (positionals.length !== 1) throw new UsageError(`expected exactly one ${what}`);
  return positionals[0]!;
}

function metaJson(meta: SecretMeta | undefined) {
  if (meta === undefined) return undefined;
  return {
    name: meta.name,
    session: meta.session,
    version: Number(meta.version),
    kind: meta.kind === ValueKind.FIELDS ? "fields" : meta.kind === ValueKind.LOOKUP ? "lookup" : "text",
    fieldNames: meta.fieldNames,
    description: meta.description,
    metadata: meta.metadata,
    allowedAgents: meta.allowedAgents,
    agentReaders: meta.agentReaders,
    egressHosts: meta.egressHosts,
    egressBody: meta.egressBody,
    ...(meta.lookup !== undefined ? { lookup: { method: meta.lookup.method, origin: meta.lookup.origin, jsonPointer: meta.lookup.jsonPointer, ttlSeconds: meta.lookup.ttlSeconds, timeoutMs: meta.lookup.timeoutMs } } : {}),
    createdAt: meta.createdAt ? timestampDate(meta.createdAt).toISOString() : "",
    updatedAt: meta.updatedAt ? timestampDate(meta.updatedAt).toISOString() : "",
  };
}

/** The stored metadata of one secret (never its value), for --keep-value; undefined when missing (the server then says so). */
async function storedMeta(client: Awaited<ReturnType<typeof connect>>, session: string, name: string): Promise<SecretMeta | undefined> {
  const page = await client.secrets.listSecrets({ session, namePrefix: name, pageSize: 1000 });
  return page.secrets.find((m) => m.name === name && m.session === session);
}

const set: Command = {
  name: "set",
  summary: "create or update a secret; the value is read from stdin",
  help: `Usage: veil secret set NAME [options] < value
       veil secret set NAME --lookup URL [--header 'K: V']... [--json-pointer /p] [--ttl 5m]

Reads the value from stdin (or prompts without echo on a terminal); never from the
command line, where other users and shell history would see it.

With --lookup nothing is read: the server fetches the value from URL when it is needed
(conversation start, 'veil secret get' by a reader) and caches it for at most --ttl.
Header values may name other secrets as {{ secrets.NAME }} (resolved by the server, and
kept off the command line): --header 'Authorization: Bearer {{ secrets.TOKEN }}'.

Options:
  --lookup URL             fetch the value from this https:// (or http://) URL
  --header 'K: V'          a request header for --lookup (repeatable)
  --json-pointer /p        the value is this string or number in the JSON response
                           (RFC 6901; none: the whole body)
  --ttl DURATION           serve a fetched value from the cache this long (90s, 5m, 1h;
                           none: fetch every time; at most 1d)
  --method GET|POST        the request method (default GET)
  --timeout DURATION       request timeout (500ms, 5s; default 5s, at most 30s)
  --fields                 stdin holds key=value lines: a grouped credential
  --keep-value             keep the value, and the description, metadata, grants and
                           egress hosts this call does not give (to clear a list, set
                           the value again without --keep-value)
  --description TEXT       free text, at most 1 KiB
  --meta KEY=VALUE         metadata entry (repeatable)
  --agent NAME             only this agent may inject it (repeatable; none = every agent)
  --reader NAME            this agent may also read the value with 'veil secret get'
                           (repeatable; none = no agent reads; must be injectable by it)
  --egress-host HOST       the secret belongs to HOST (host, host:port or *.domain;
                           repeatable): commands then get a placeholder, and only the
                           egress gateway swaps the value in, for requests to HOST
  --egress-body            with --egress-host: also substitute in request bodies
  --expected-version N     check-and-set: write only if the stored version is N (0 = new)
  --session S              scope inside the tenant ("" = tenant-wide)
  --json                   print the written metadata as JSON
${CONNECTION_HELP}`,
  async run(argv) {
    const { values, positionals } = parse(argv, {
      ...CONNECTION_OPTIONS,
      ...session,
      ...json,
      fields: { type: "boolean" },
      "keep-value": { type: "boolean" },
      description: { type: "string" },
      meta: { type: "string", multiple: true },
      agent: { type: "string", multiple: true },
      reader: { type: "string", multiple: true },
      "egress-host": { type: "string", multiple: true },
      "egress-body": { type: "boolean" },
      "expected-version": { type: "string" },
      lookup: { type: "string" },
      header: { type: "string", multiple: true },
      "json-pointer": { type: "string" },
      ttl: { type: "string" },
      method: { type: "string" },
      timeout: { type: "string" },
    });
    const name = one(positionals, "secret NAME");
    const lookup = lookupFrom(values);
    const expected = values["expected-version"];
    if (expected !== undefined && !/^\d+$/.test(expected)) throw new UsageError("--expected-version: must be a whole number");
    const client = await connect(values);
    let value: { text?: string; fields?: Record<string, string>; lookup?: ReturnType<typeof lookupFrom> } = {};
    if (lookup !== undefined) {
      value = { lookup };
    } else if (!values["keep-value"]) {
      const raw = await readSecretValue(name);
      value = values.fields ? { fields: keyValues(raw.split(/\r?\n/), "stdin (--fields)") } : { text: raw };
    }
    // --keep-value: what is not given stays as stored, checked-and-set against the version read.
    const kept = values["keep-value"] ? await storedMeta(client, values.session ?? "", name) : undefined;
    const res = await client.secrets.setSecrets({
      session: values.session ?? "",
      secrets: [
        {
          name,
          ...value,
          description: values.description ?? kept?.description ?? "",
          metadata: values.meta !== undefined ? keyValues(values.meta, "--meta") : (kept?.metadata ?? {}),
          allowedAgents: values.agent ?? kept?.allowedAgents ?? [],
          agentReaders: values.reader ?? kept?.agentReaders ?? [],
          egressHosts: values["egress-host"] ?? kept?.egressHosts ?? [],
          egressBody: values["egress-body"] ?? kept?.egressBody ?? false,
          ...(expected !== undefined ? { expectedVersion: BigInt(expected) } : kept !== undefined ? { expectedVersion: kept.version } : {}),
        },
      ],
    });
    const meta = res.secrets[0];
    if (values.json) process.stdout.write(`${JSON.stringify(metaJson(meta))}\n`);
    else process.stderr.write(`${name}: version ${meta?.version}\n`);
    return EXIT.ok;
  },
};

/** The LookupSource the --lookup options describe; undefined without --lookup (then its options are refused). */
function lookupFrom(values: { lookup?: string; header?: string[]; "json-pointer"?: string; ttl?: string; method?: string; timeout?: string; fields?: boolean; "keep-value"?: boolean }) {
  if (values.lookup === undefined) {
    const stray = (["header", "json-pointer", "ttl", "method", "timeout"] as const).find((k) => values[k] !== undefined);
    if (stray !== undefined) throw new UsageError(`--${stray}: only with --lookup URL`);
    return undefined;
  }
  if (values.fields || values["keep-value"]) throw new UsageError("--lookup: the value is fetched; not with --fields or --keep-value");
  const headers: Record<string, string> = {};
  for (const header of values.header ?? []) {
    const colon = header.indexOf(":");
    if (colon <= 0) throw new UsageError("--header: expected 'Name: value' (one of them has no ':')");
    headers[header.slice(0, colon).trim()] = header.slice(colon + 1).trim();
  }
  const timeout = values.timeout;
  const timeoutMs = timeout === undefined ? 0 : /^\d+ms$/.test(timeout.trim()) ? Number.parseInt(timeout, 10) : parseDuration(timeout, "--timeout") * 1000;
  return {
    url: values.lookup,
    method: (values.method ?? "GET").toUpperCase(),
    headers,
    jsonPointer: values["json-pointer"] ?? "",
    ttlSeconds: values.ttl === undefined ? 0 : parseDuration(values.ttl, "--ttl"),
    timeoutMs,
  };
}

const ls: Command = {
  name: "ls",
  aliases: ["list"],
  summary: "list secret names and metadata (never values)",
  help: `Usage: veil secret ls [options]

Options:
  --prefix P      only names starting with P
  --session S     scope inside the tenant
  --json          one JSON object per line
${CONNECTION_HELP}`,
  async run(argv) {
    const { values } = parse(argv, { ...CONNECTION_OPTIONS, ...session, ...json, prefix: { type: "string" } }, false);
    const client = await connect(values);
    const rows: SecretMeta[] = [];
    let pageToken = "";
    do {
      const page = await client.secrets.listSecrets({ session: values.session ?? "", namePrefix: values.prefix ?? "", pageSize: 1000, pageToken });
      rows.push(...page.secrets);
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    if (values.json) {
      for (const meta of rows) process.stdout.write(`${JSON.stringify(metaJson(meta))}\n`);
    } else if (rows.length > 0) {
      const header = ["NAME", "VERSION", "KIND", "AGENTS", "READERS", "EGRESS", "UPDATED", "DESCRIPTION"];
      const body = rows.map((m) => {
        const j = metaJson(m)!;
        const egress = j.egressHosts.length === 0 ? "-" : `${j.egressHosts.join(",")}${j.egressBody ? " (body)" : ""}`;
        return [j.name, String(j.version), j.kind, j.allowedAgents.join(",") || "*", j.agentReaders.join(",") || "-", egress, j.updatedAt, j.description];
      });
      process.stdout.write(`${table([header, ...body])}\n`);
    }
    return EXIT.ok;
  },
};

const get: Command = {
  name: "get",
  summary: "print a secret's value",
  help: `Usage: veil secret get NAME [options]

Prints the value to stdout (fields as key=value lines).

Options:
  --version N     a kept older version (the last 10 are kept)
  --session S     scope inside the tenant
  --json          value and metadata as one JSON object
${CONNECTION_HELP}`,
  async run(argv) {
    const { values, positionals } = parse(argv, { ...CONNECTION_OPTIONS, ...session, ...json, version: { type: "string" } });
    const name = one(positionals, "secret NAME");
    if (values.version !== undefined && !/^\d+$/.test(values.version)) throw new UsageError("--version: must be a whole number");
    const client = await connect(values);
    const res = await client.secrets.getSecret({ session: values.session ?? "", name, version: BigInt(values.version ?? 0) });
    if (values.json) {
      process.stdout.write(`${JSON.stringify({ ...metaJson(res.meta), ...(res.text !== undefined ? { text: res.text } : { fields: res.fields }) })}\n`);
    } else if (res.text !== undefined) {
      process.stdout.write(res.text.endsWith("\n") || !process.stdout.isTTY ? res.text : `${res.text}\n`);
    } else {
      process.stdout.write(Object.entries(res.fields).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}=${v}\n`).join(""));
    }
    return EXIT.ok;
  },
};

const rm: Command = {
  name: "rm",
  aliases: ["delete"],
  summary: "delete a secret and all its versions",
  help: `Usage: veil secret rm NAME [options]

Options:
  --session S     scope inside the tenant
  --json          print {name, session, deleted} as JSON
${CONNECTION_HELP}`,
  async run(argv) {
    const { values, positionals } = parse(argv, { ...CONNECTION_OPTIONS, ...session, ...json });
    const name = one(positionals, "secret NAME");
    const client = await connect(values);
    await client.secrets.deleteSecret({ session: values.session ?? "", name });
    if (values.json) process.stdout.write(`${JSON.stringify({ name, session: values.session ?? "", deleted: true })}\n`);
    else process.stderr.write(`${name}: deleted\n`);
    return EXIT.ok;
  },
};

/** The `veil secret` group. */
export const secretCommand = group("secret", "manage secrets: set, list, get, delete", [set, ls, get, rm]);
