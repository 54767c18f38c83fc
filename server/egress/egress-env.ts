// What a sandbox in NETWORK_MODE_EGRESS is given: the proxy variables, the trust variables, and the binds behind them.

/** Where the in-sandbox helper listens (inside the sandbox's own network namespace). */
export const SANDBOX_PROXY_URL = "http://127.0.0.1:3128";
/** Inside the sandbox: the system CAs plus Veil's. */
export const SANDBOX_CA_BUNDLE = "/run/veil/ca-bundle.pem";
/** Inside the sandbox: Veil's CA alone. */
export const SANDBOX_CA_CERT = "/run/veil/egress-ca.pem";

/**
 * The environment of a command in an egress sandbox; it wins over request env. No NO_PROXY:
 * a host a caller exempts from the proxy simply has no network (there is no route out).
 */
export function egressEnv(): Record<string, string> {
  const env: Record<string, string> = { NODE_EXTRA_CA_CERTS: SANDBOX_CA_CERT }; // Node appends it to its own roots
  for (const name of ["HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"]) env[name] = SANDBOX_PROXY_URL;
  for (const name of ["SSL_CERT_FILE", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "GIT_SSL_CAINFO", "PIP_CERT", "AWS_CA_BUNDLE", "CARGO_HTTP_CAINFO"]) {
    env[name] = SANDBOX_CA_BUNDLE;
  }
  return env;
}

/** bwrap arguments binding the trust files read-only (after the tmpfs that hides the work dir). */
export function egressTrustBinds(files: { caBundle: string; caCert: string }): string[] {
  return ["--ro-bind", files.caBundle, SANDBOX_CA_BUNDLE, "--ro-bind", files.caCert, SANDBOX_CA_CERT];
}
