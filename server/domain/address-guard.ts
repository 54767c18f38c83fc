// Which addresses the gateway may dial: loopback, private, link-local and cloud-metadata ones only when allowed.
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from "node:dns";
import { BlockList, isIP } from "node:net";

const PRIVATE = new BlockList();
for (const [net, prefix] of [
  ["0.0.0.0", 8], ["10.0.0.0", 8], ["100.64.0.0", 10], ["127.0.0.0", 8], ["169.254.0.0", 16],
  ["172.16.0.0", 12], ["192.0.0.0", 24], ["192.168.0.0", 16], ["198.18.0.0", 15], ["224.0.0.0", 4], ["240.0.0.0", 4],
] as const) PRIVATE.addSubnet(net, prefix, "ipv4");
for (const [net, prefix] of [
  ["::", 128], ["::1", 128], ["fc00::", 7], ["fe80::", 10], ["ff00::", 8], ["64:ff9b::", 96], ["fd00:ec2::", 32],
] as const) PRIVATE.addSubnet(net, prefix, "ipv6");
// Cloud metadata endpoints outside the ranges above (Alibaba, Azure): credentials live there.
PRIVATE.addAddress("100.100.100.200", "ipv4");
PRIVATE.addAddress("168.63.129.16", "ipv4");

/** Whether an IP address is loopback, private, link-local, multicast, reserved or a metadata endpoint. */
export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return PRIVATE.check(address, "ipv4");
  if (family !== 6) return false;
  // IPv4-mapped and -compatible forms reach the IPv4 address: judge that.
  const mapped = /^::(?:ffff:)?(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped !== null) return PRIVATE.check(mapped[1]!, "ipv4");
  return PRIVATE.check(address, "ipv6");
}

/** The error a guarded dial fails with; the gateway answers it as a 403, not a 502. */
export class PrivateAddressError extends Error {
  override readonly name = "PrivateAddressError";
  readonly code = "EGRESS_PRIVATE";
}

/**
 * Refuses an IP literal that is private unless allowed: `lookup` is never called for literals,
 * so the guard below cannot see them. Answers the refusal reason, or undefined.
 */
export function checkLiteral(host: string, allowPrivate: boolean): string | undefined {
  if (allowPrivate || isIP(host) === 0 || !isPrivateAddress(host)) return undefined;
  return `${host} is a loopback or private address`;
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for agents: resolves every address and drops the private ones (unless allowed), so the
 * address judged is the address dialled. All survivors pass on, and autoSelectFamily tries each family.
 */
export function guardedLookup(allowPrivate: boolean) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error !== null) return callback(error, []);
      const kept = allowPrivate ? addresses : addresses.filter((a) => !isPrivateAddress(a.address));
      if (kept.length === 0) return callback(new PrivateAddressError(`${hostname} resolves only to loopback or private addresses`), []);
      if (options.all === true) return callback(null, kept);
      return callback(null, kept[0]!.address, kept[0]!.family);
    });
  };
}
