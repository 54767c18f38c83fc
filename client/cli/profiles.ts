// Named connection profiles of `veil login`: URL, token file and CA file in one 0600 JSON file in the XDG config dir.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { UsageError } from "./io.js";

/** Where and how to reach one server. The token itself stays in its own file, never in the config. */
export interface Profile {
  url: string;
  tokenFile?: string;
  caFile?: string;
}

/** The config file: the profile used by default, and every profile by name. */
export interface CliConfig {
  current?: string;
  profiles: Record<string, Profile>;
}

/** The config dir: $XDG_CONFIG_HOME/veil, else ~/.config/veil. */
export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_CONFIG_HOME || join(homedir(), ".config"), "veil");
}

/** `<config dir>/config.json`. */
export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(configDir(env), "config.json");
}

/** The config, or an empty one when there is none yet. */
export function readConfig(env: NodeJS.ProcessEnv = process.env): CliConfig {
  const path = configPath(env);
  if (!existsSync(path)) return { profiles: {} };
  try {
    const config = JSON.parse(readFileSync(path, "utf8")) as Partial<CliConfig>;
    return { ...config, profiles: config.profiles ?? {} };
  } catch {
    throw new UsageError(`${path}: not valid JSON (fix it, or remove it and run 'veil login' again)`);
  }
}

/** Writes a file 0600 in a 0700 dir through a rename, so a reader never sees half of it. */
export function writePrivate(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, text, { mode: 0o600 });
  renameSync(temp, path);
}

/** Saves the config (0600). */
export function writeConfig(config: CliConfig, env: NodeJS.ProcessEnv = process.env): void {
  writePrivate(configPath(env), `${JSON.stringify(config, null, 2)}\n`);
}

/**
 * The profile in force: --profile, else $VEIL_PROFILE, else the config's current one. A profile
 * asked for by name that does not exist is a usage error; no config at all is simply none.
 */
export function activeProfile(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): Profile | undefined {
  const named = flag ?? (env.VEIL_PROFILE || undefined);
  const config = readConfig(env);
  const name = named ?? config.current;
  if (name === undefined) return undefined;
  const profile = config.profiles[name];
  if (profile === undefined && named !== undefined) {
    const known = Object.keys(config.profiles);
    throw new UsageError(`${flag !== undefined ? "--profile" : "VEIL_PROFILE"}: no profile '${name}' (${known.length > 0 ? `known: ${known.join(", ")}` : "run 'veil login' first"})`);
  }
  return profile;
}
