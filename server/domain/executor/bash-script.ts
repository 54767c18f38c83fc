// The bash text fed to the persistent shell's stdin: the start-up prologue and the wrapper around each command.
// Values appear only in a command's own `env` (INJECT_REFERENCED), through the private stdin pipe, never argv or files.

/** Single-quotes a string for bash: everything inside is literal, including newlines. */
export function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

// Every variable name starts with one of these; "${!X@}" lists them without forking, whatever IFS is.
const ALL_NAMES = [..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_"].map((c) => `"\${!${c}@}"`).join(" ");

/**
 * Reports `R<exit code>\0C<cwd>\0E<declare -px>\0\0` on fd 3 (control-channel.ts reads it). The
 * variables come from `declare -px`, a builtin that lists the exported ones in one pass: no fork,
 * which can fail, or stall in bash's fork retries for 15 s, when a command left a fork bomb at its
 * process limit; and no per-name work, which made a report by the 53 `${!X@}` lists quadratic (250 ms
 * at 1,000 variables, 2.3 s at 3,000, after every command). When a command disabled that builtin
 * (`enable -n declare typeset`), the lists are the fallback, printed as `NAME=VALUE\0` fields after
 * the empty `E`: every exported variable is always found, so a replacement shell keeps them.
 */
const REPORT_STATE =
  `{ builtin printf 'R%s\\0C%s\\0E' "$__veil_rc" "\${PWD-}"; ` +
  `if builtin declare -px 2>/dev/null || builtin typeset -px 2>/dev/null; then builtin printf '\\0'; ` +
  `else builtin printf '\\0'; for __veil_n in ${ALL_NAMES}; do case \${!__veil_n@a} in *[aA]*) ;; *x*) ` +
  `if [[ -n \${!__veil_n+y} ]]; then builtin printf '%s=%s\\0' "$__veil_n" "\${!__veil_n}"; fi;; esac; done; fi; ` +
  `builtin printf '\\0'; } >&3`;

/**
 * Run once when the shell starts: keeps copies of stdout/stderr on fds 4 and 5 so end markers still
 * arrive after a command ran `exec >file`, moves to `cwd` (restoring a replaced shell), and reports the
 * initial state, which doubles as the "ready" signal.
 */
export function prologue(cwd: string | undefined): string {
  const cd = cwd === undefined ? "" : `builtin cd -- ${shellQuote(cwd)} 2>/dev/null; `;
  return `exec 4>&1 5>&2; ${cd}__veil_rc=0; ${REPORT_STATE}\n`;
}

/**
 * Hands a shell opened ahead of its conversation (with the base environment only) the conversation's
 * environment and directory, before its first command: the variables exported, as a spawn with them
 * would have had them, and a `cd`. Quiet: a refused name must not reach the first command's output.
 */
export function adoptLine(env: Record<string, string>, cwd: string): string {
  const exports = Object.entries(env).map(([name, value]) => `builtin export ${name}=${shellQuote(value)}; `).join("");
  return `{ ${exports}builtin cd -- ${shellQuote(cwd)}; } 2>/dev/null\n`;
}

/**
 * Wraps one command. Each command starts with stdout/stderr on the pipes again (an `exec >file` or
 * `exec 2>&1` lasts until the end of its command, so streams stay apart for the next). It runs through
 * `eval` of a single-quoted word, so any text (quotes, heredocs, syntax errors) stays inside it, in the
 * shell itself so cd/export/functions persist; stdin is /dev/null so it cannot eat the next wrapper,
 * and fds 3-5 are closed for it so it cannot forge the protocol. (A plain `exec`: `builtin exec` would
 * undo its own redirections.)
 * errexit, nounset and xtrace are switched off around the wrapper's own work and back on for the next
 * command, so they neither break the wrapper nor trace it. Then the marker goes to stdout and stderr
 * (printed as two halves so an xtrace or verbose echo of this line never contains it whole) and the
 * state to fd 3.
 */
export function commandWrapper(command: string, marker: MarkerHalves, env: Record<string, string> = {}, stdin = false): string {
  const printMarker = `builtin printf '\\036VEIL%s%s\\036' ${marker.head} ${marker.tail}`;
  // Per-command variables are exported before tracing is restored (so `set -x` never prints them)
  // and unset before the state report (so a replacement shell never inherits them).
  const names = Object.keys(env);
  const exports = names.map((name) => `builtin export ${name}=${shellQuote(env[name]!)}; `).join("");
  const unsets = names.length > 0 ? `builtin unset ${names.join(" ")}; ` : "";
  return (
    `exec 1>&4 2>&5; ${stdin ? STDIN_RELAY : ""}${exports}{ if [[ -n \${__veil_f-} ]]; then builtin set -$__veil_f; fi; } 2>/dev/null; ` +
    `builtin eval ${shellQuote(command)} ${stdin ? "<&8 8<&-" : "</dev/null"} 3>&- 4>&- 5>&- 7<&-; ` +
    `{ __veil_rc=$? __veil_f=\${-//[^eux]/}; builtin set +eux; } 2>/dev/null; ${stdin ? "exec 8<&-; " : ""}${unsets}` +
    `${printMarker} >&4; ${printMarker} >&5; ${REPORT_STATE}\n`
  );
}

/**
 * The relay that feeds a command's stdin (a command run with stdin): on fd 7 the server writes
 * frames `LENGTH\n` + LENGTH bytes and ends with `0\n`. `read` takes the length a byte at a
 * time and `head -c` never reads past its frame, so nothing of a later frame is lost. It runs as
 * a process substitution opened on fd 8; the next such command first waits for the previous
 * relay to have read its `0` frame, so two relays never share fd 7. The relay ignores the signals
 * SignalCommand sends (they are meant for the command), so the frame stream is never cut mid-way.
 */
const STDIN_RELAY =
  `[[ -n \${__veil_relay-} ]] && { builtin wait "$__veil_relay"; } 2>/dev/null; ` +
  `exec 8< <(trap '' INT TERM HUP QUIT USR1 USR2; while builtin read -r __veil_n <&7 && [[ $__veil_n != 0 ]]; do head -c "$__veil_n" <&7 || :; done 3>&- 4>&- 5>&- 2>/dev/null); __veil_relay=$!; `;

/** A per-command random marker, as bash sees it (two hex halves) and as it appears in the output. */
export interface MarkerHalves {
  head: string;
  tail: string;
}

/** The bytes `commandWrapper` prints for this marker. */
export function markerBytes(marker: MarkerHalves): Buffer {
  return Buffer.from(`\x1eVEIL${marker.head}${marker.tail}\x1e`, "latin1");
}
