// `veil keys rotate|status|retire`: key generations, online (operator token).
import type { KeyStatus } from "../../index.js";
import { type Command, group, parse } from "../command.js";
import { CONNECTION_HELP, CONNECTION_OPTIONS, connect } from "../connection.js";
import { EXIT, UsageError } from "../io.js";

function describe(status: KeyStatus | undefined): string {
  if (status === undefined) return "";
  const progress = status.reencrypting ? `re-encrypting: ${status.valuesMoved} moved, ${status.valuesRemaining} remaining` : "every value is on the active generation";
  return `active generation ${status.activeGeneration} (held: ${status.generations.join(", ")}); ${progress}`;
}

function statusJson(status: KeyStatus | undefined) {
  return status && {
    activeGeneration: status.activeGeneration,
    generations: status.generations,
    reencrypting: status.reencrypting,
    valuesMoved: Number(status.valuesMoved),
    valuesRemaining: Number(status.valuesRemaining),
  };
}

const rotate: Command = {
  name: "rotate",
  summary: "add a key generation and re-encrypt every value to it",
  help: `Usage: veil keys rotate [--no-wait] [--retire] [--json]

Adds a new key generation (new writes use it at once) and re-encrypts every stored value
and setting to it in the background, online. Waits until done and exits 0, unless
--no-wait. With --retire, drops the old generations afterwards.

${CONNECTION_HELP}`,
  async run(argv) {
    const { values } = parse(argv, { ...CONNECTION_OPTIONS, "no-wait": { type: "boolean" }, retire: { type: "boolean" }, json: { type: "boolean" } }, false);
    const client = await connect(values);
    // Re-encrypting a large store takes a while: no deadline on the wait.
    let { status } = await client.keys.rotateKeys({ wait: !values["no-wait"] });
    let retired: number[] = [];
    if (values.retire && !values["no-wait"]) ({ retired, status } = await client.keys.retireKeys({}));
    if (values.json) process.stdout.write(`${JSON.stringify({ ...statusJson(status), retired })}\n`);
    else process.stderr.write(`${describe(status)}${retired.length ? `; retired ${retired.join(", ")}` : ""}\n`);
    return EXIT.ok;
  },
};

const status: Command = {
  name: "status",
  summary: "show the active generation and re-encryption progress",
  help: `Usage: veil keys status [--json]\n\n${CONNECTION_HELP}`,
  async run(argv) {
    const { values } = parse(argv, { ...CONNECTION_OPTIONS, json: { type: "boolean" } }, false);
    const { status } = await (await connect(values)).keys.getKeyStatus({});
    process.stdout.write(values.json ? `${JSON.stringify(statusJson(status))}\n` : `${describe(status)}\n`);
    return EXIT.ok;
  },
};

const retire: Command = {
  name: "retire",
  summary: "drop old generations once nothing needs them",
  help: `Usage: veil keys retire [--json]\n\nRefuses while a value still needs an old generation.\n\n${CONNECTION_HELP}`,
  async run(argv) {
    const { values } = parse(argv, { ...CONNECTION_OPTIONS, json: { type: "boolean" } }, false);
    const res = await (await connect(values)).keys.retireKeys({});
    if (values.json) process.stdout.write(`${JSON.stringify({ ...statusJson(res.status), retired: res.retired })}\n`);
    else process.stderr.write(`retired: ${res.retired.join(", ") || "none"}; ${describe(res.status)}\n`);
    return EXIT.ok;
  },
};


const rekey: Command = {
  name: "rekey",
  summary: "replace the master key of a stopped server's data dir",
  help: `Usage: veil keys rekey --data-dir D --new-master-key-file F

Re-wraps the keyring of data dir D under the master key in file F (base64 of 32 bytes).
Run it while the server is stopped; the current master key comes from VEIL_MASTER_KEY,
--master-key-file, or D/master.key as for 'veil serve'. Values are not re-encrypted:
only the keyring changes. Start the server with the new key afterwards.

Options:
  --data-dir D               the data dir (default $VEIL_DATA_DIR or ./.veil)
  --master-key-file F        the current master key, if not in VEIL_MASTER_KEY or D/master.key
  --new-master-key-file F    the new master key (required)
  --json                     print {dataDir, rewrapped} as JSON`,
  async run(argv) {
    const { values } = parse(argv, { "data-dir": { type: "string" }, "master-key-file": { type: "string" }, "new-master-key-file": { type: "string" }, json: { type: "boolean" } }, false);
    const newFile = values["new-master-key-file"];
    if (newFile === undefined) throw new UsageError("--new-master-key-file: required");
    const { rekeyDataDir } = await import("../../../server/crypto/rekey.js");
    const dataDir = values["data-dir"] ?? process.env.VEIL_DATA_DIR ?? "./.veil";
    await rekeyDataDir({ dataDir, newKeyFile: newFile, ...(values["master-key-file"] !== undefined ? { masterKeyFile: values["master-key-file"] } : {}) });
    if (values.json) process.stdout.write(`${JSON.stringify({ dataDir, rewrapped: true })}\n`);
    else process.stderr.write(`${dataDir}: keyring re-wrapped under the new master key\n`);
    return EXIT.ok;
  },
};

/** The `veil keys` group. */
export const keysCommand = group("keys", "rotate key generations online, replace the master key", [rotate, status, retire, rekey]);
