// The URL a server tells the others to reach it at: --advertise-url, else its own listening address when that names one host.
import { ConfigError, type ServerConfig } from "../config.js";

/** Hosts that mean "every interface": no other server could dial them. */
const WILDCARDS = new Set(["0.0.0.0", "::", "[::]", "", "::0"]);

/**
 * Refuses, before anything starts, a server on a shared store that could not say where it is:
 * other servers forward conversation calls to that URL.
 */
export function checkAdvertisable(config: Pick<ServerConfig, "host" | "advertiseUrl">): void {
  if (config.advertiseUrl === undefined && WILDCARDS.has(config.host)) {
    throw new ConfigError(
      `--advertise-url (or VEIL_ADVERTISE_URL): needed with a shared store when --host is ${config.host || '""'}, which other servers cannot dial; give the URL they reach this server at, such as https://veil-1.internal:8443`,
    );
  }
}

/** The advertise URL: the flag's, or the listener's own (`http(s)://host:port`, the bound port when --port 0); undefined when neither names a host. */
export function advertiseUrl(config: Pick<ServerConfig, "host" | "advertiseUrl">, listenerUrl: string): string | undefined {
  if (config.advertiseUrl !== undefined) return config.advertiseUrl;
  return WILDCARDS.has(config.host) ? undefined : listenerUrl;
}
