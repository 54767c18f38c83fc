// Egress network mode, sandbox side: the binds and env a shell gets, and the listener an in-sandbox helper hands over on fd 6.
import type { ChildProcess } from "node:child_process";
import { realpathSync } from "node:fs";
import { type AddressInfo, Server } from "node:net";

/** How a shell reaches the network: not at all (own loopback only), only through Veil's egress gateway, or the host's network. */
export type NetworkMode = "none" | "egress" | "host";

/** The trust files the sandbox sees under /run/veil (host paths, readable by the conversation's uid). */
export interface EgressFiles {
  /** System CAs plus Veil's egress CA: SSL_CERT_FILE and friends point here. */
  bundle: string;
  /** Veil's egress CA alone: NODE_EXTRA_CA_CERTS (Node adds it to its own roots). */
  caCert: string;
}

/** What an egress shell needs from its caller: the trust files, and who serves the listener of each shell. */
export interface EgressOptions {
  files: EgressFiles;
  /**
   * Called once per shell (the first and every replacement) with the listening socket bound to
   * 127.0.0.1:3128 inside that shell's network namespace. The returned function is called when that
   * shell exits; the executor closes the listener right after it.
   */
  attach(listener: Server): () => void;
}

/** Thrown by openShellSession for egress without a sandbox: without a network namespace it cannot fail closed. */
export class EgressNeedsSandboxError extends Error {
  constructor() {
    super(
      "network egress: needs the bubblewrap sandbox (its own network namespace, so that only the gateway is reachable); " +
        "this server runs commands with --sandbox off, where a command would have the host's whole network",
    );
    this.name = "EgressNeedsSandboxError";
  }
}

/** Where the proxy listens inside the sandbox. */
export const EGRESS_HOST = "127.0.0.1";
export const EGRESS_PORT = 3128;
export const EGRESS_PROXY_URL = `http://${EGRESS_HOST}:${EGRESS_PORT}`;

/** Paths inside the sandbox. */
export const SANDBOX_NODE = "/run/veil/node";
export const SANDBOX_BUNDLE = "/run/veil/ca-bundle.pem";
export const SANDBOX_CA_CERT = "/run/veil/egress-ca.pem";

/** The fd the IPC channel gets in the shell: 3 is the control channel, 4 and 5 the prologue's copies of stdout/stderr. */
export const EGRESS_IPC_FD = 6;

/** The message name the helper sends its listener under. */
const MESSAGE = "veil-egress";

/**
 * bwrap arguments binding the server's own node binary and the trust files read-only. They go after
 * the hiding tmpfs mounts (the work dir holding the files is hidden); bwrap creates /run/veil on the
 * sandbox's tmpfs root.
 */
export function egressBinds(files: EgressFiles): string[] {
  return ["--ro-bind", realpathSync(process.execPath), SANDBOX_NODE, "--ro-bind", files.bundle, SANDBOX_BUNDLE, "--ro-bind", files.caCert, SANDBOX_CA_CERT];
}

/** The env an egress shell gets on top of the caller's (Veil's values win). No NO_PROXY: everything goes through the gateway. */
export function egressEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of ["HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"]) env[name] = EGRESS_PROXY_URL;
  for (const name of ["SSL_CERT_FILE", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "GIT_SSL_CAINFO", "PIP_CERT", "AWS_CA_BUNDLE", "CARGO_HTTP_CAINFO"]) {
    env[name] = SANDBOX_BUNDLE;
  }
  env.NODE_EXTRA_CA_CERTS = SANDBOX_CA_CERT;
  return env;
}

// Listens on the sandbox's loopback, sends the listening socket to the server, closes its own copy and exits.
const LISTEN =
  `const s=require("net").createServer();s.listen({host:"${EGRESS_HOST}",port:${EGRESS_PORT}},` +
  `()=>process.send("${MESSAGE}",s,()=>{s.close();process.disconnect()}))`;

/**
 * The first line bash runs, before the prologue. The helper starts with an empty environment except
 * the IPC channel (no secrets, no NODE_OPTIONS or LD_PRELOAD from the request), one V8 worker thread
 * (it counts against the process limit), and no access to fds 3-5. If it fails the shell exits 97, so
 * the start fails. Then fd 6 is closed and the channel variables are unset: no user command sees them.
 */
export function egressHelperLine(): string {
  return (
    `/usr/bin/env -i NODE_CHANNEL_FD="$NODE_CHANNEL_FD" NODE_CHANNEL_SERIALIZATION_MODE="$NODE_CHANNEL_SERIALIZATION_MODE" ` +
    `${SANDBOX_NODE} --v8-pool-size=1 -e '${LISTEN}' </dev/null >/dev/null 3>&- 4>&- 5>&- || builtin exit 97; ` +
    `exec ${EGRESS_IPC_FD}>&-; builtin unset NODE_CHANNEL_FD NODE_CHANNEL_SERIALIZATION_MODE\n`
  );
}

/**
 * Resolves with the listener the helper sent over the child's IPC channel. Rejects (closing any handle
 * received) unless the first message is `veil-egress` carrying a net.Server listening on
 * 127.0.0.1:3128; the caller's start timeout bounds the wait. A further message fails `extra()` and
 * its handle is closed. The channel is not disconnected from this side (Node then never emits the
 * child's 'close'): it ends when the helper disconnects and bash closes fd 6. `cancel()` closes a
 * listener that was received or arrives later.
 */
export function receiveListener(child: ChildProcess): { listener: Promise<Server>; extra(): string | undefined; cancel(): void } {
  let cancelled = false;
  let messages = 0;
  let resolveListener!: (server: Server) => void;
  let rejectListener!: (error: Error) => void;
  const listener = new Promise<Server>((resolve, reject) => {
    resolveListener = resolve;
    rejectListener = reject;
  });
  // The shell failing is reported by the handshake; this rejection must not surface on its own.
  listener.catch(() => {});
  child.on("message", (message: unknown, handle: unknown) => {
    messages++;
    const problem = messages > 1 ? "the helper sent more than one message" : listenerProblem(message, handle);
    if (problem !== undefined || cancelled) {
      if (handle instanceof Server) handle.close();
      rejectListener(new Error(`egress listener: ${problem ?? "arrived after the start was given up"}`));
      return;
    }
    resolveListener(handle as Server);
  });
  return {
    listener,
    extra: () => (messages > 1 ? "egress listener: the helper sent more than one message" : undefined),
    cancel() {
      cancelled = true;
      void listener.then(
        (server) => server.close(),
        () => {},
      );
    },
  };
}

function listenerProblem(message: unknown, handle: unknown): string | undefined {
  if (message !== MESSAGE) return "the helper sent an unexpected message";
  if (!(handle instanceof Server)) return "the helper's message carried no listening socket";
  const address = handle.address() as AddressInfo | string | null;
  if (typeof address !== "object" || address === null || address.address !== EGRESS_HOST || address.port !== EGRESS_PORT) {
    return `the socket listens on ${typeof address === "object" && address !== null ? `${address.address}:${address.port}` : String(address)}, not ${EGRESS_HOST}:${EGRESS_PORT}`;
  }
  return undefined;
}
