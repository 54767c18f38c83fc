// The shell's environment, built from nothing: a fixed base plus what the caller passes, never the server's own.

/** PATH every shell starts with, whatever the server's PATH is. */
export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Variables bash manages itself; carrying them over to a replacement shell would be wrong (SHLVL would grow). */
const SHELL_MANAGED = new Set(["_", "PWD", "SHLVL"]);

/** Base environment plus the caller's `env` (which wins); throws on a name bash cannot export or a value with a NUL byte. */
export function buildShellEnv(workspace: string, env: Record<string, string>): Record<string, string> {
  for (const [name, value] of Object.entries(env)) {
    if (!NAME.test(name)) throw new Error(`environment variable name ${JSON.stringify(name)} must match ${NAME.source}`);
    if (value.includes("\0")) throw new Error(`environment variable ${name} contains a NUL byte`);
  }
  // TERM=dumb: colour escapes would split secret values in the output and hinder masking.
  return { PATH: DEFAULT_PATH, HOME: workspace, LANG: "C.UTF-8", TERM: "dumb", ...env };
}

/** The exported variables a shell reported, minus the ones bash sets for itself: what a replacement shell starts with. */
export function envForRestore(reported: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(reported)) {
    if (!SHELL_MANAGED.has(name) && NAME.test(name)) env[name] = value;
  }
  return env;
}
