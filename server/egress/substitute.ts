// Placeholder <-> value substitution: request target and headers, streaming bodies, and echoed values in responses.
import { Transform, type TransformCallback } from "node:stream";
import type { GatewaySubstitution } from "./identity.js";
import { type HostRule, matchesRule, parseHostRule } from "./rules.js";

/** A substitution with its rules parsed once, when the listener is attached. */
export interface Routed extends GatewaySubstitution {
  readonly rules: readonly HostRule[];
}

/** Parses every substitution's hosts; a malformed rule admits nothing (validation rejects it earlier). */
export function route(substitutions: readonly GatewaySubstitution[]): Routed[] {
  return substitutions.map((s) => ({
    ...s,
    rules: s.hosts.map(parseHostRule).filter((r): r is HostRule => typeof r !== "string"),
  }));
}

/** The substitutions whose own hosts admit `host:port` (mine) and all the others (foreign). */
export function splitByHost(subs: readonly Routed[], host: string, port: number): { mine: Routed[]; foreign: Routed[] } {
  const mine: Routed[] = [];
  const foreign: Routed[] = [];
  for (const s of subs) (s.rules.some((r) => matchesRule(r, host, port)) ? mine : foreign).push(s);
  return { mine, foreign };
}

/** The first foreign substitution whose placeholder occurs in any of the texts: the request must be refused. */
export function findForeign(texts: readonly string[], foreign: readonly Routed[]): Routed | undefined {
  return foreign.find((s) => texts.some((t) => t.includes(s.placeholder)));
}

/** Replaces each of `mine`'s placeholders in `text` by its value, noting the secrets used. */
export function substituteText(text: string, mine: readonly Routed[], used: Set<string>): string {
  let out = text;
  for (const s of mine) {
    if (!out.includes(s.placeholder)) continue;
    out = out.split(s.placeholder).join(s.value);
    used.add(s.secret);
  }
  return out;
}

/** Hop-by-hop headers: they describe one leg, never forwarded. */
export const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "proxy-authorization", "proxy-authenticate", "te", "trailer", "transfer-encoding", "upgrade"]);

/** Forwardable headers from a raw header list (joined per name as Node does), each value passed through `map`. */
export function forwardHeaders(raw: readonly string[], map: (value: string) => string, skip: ReadonlySet<string> = HOP_BY_HOP): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const named = new Set<string>();
  // `Connection: x-foo` names more hop-by-hop headers for this leg.
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() === "connection") for (const n of raw[i + 1]!.split(",")) named.add(n.trim().toLowerCase());
  }
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (skip.has(name) || named.has(name)) continue;
    const value = map(raw[i + 1]!);
    const prev = out[name];
    out[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  return out;
}

/** One byte string to replace; `refuse` names a secret whose occurrence aborts the stream instead. */
export interface Pair {
  readonly from: Buffer;
  readonly to: Buffer;
  readonly refuse?: string;
  /** The secret a substitution belongs to: passed to the Replacer's `before` hook. */
  readonly secret?: string;
}

/** The stream error when a body carries a placeholder for a host it does not belong to. */
export class ForeignPlaceholderError extends Error {
  override readonly name = "ForeignPlaceholderError";
  constructor(readonly secret: string) {
    super(`${secret} may only be sent to its own hosts`);
  }
}

/** Whether every pair keeps the length, so Content-Length survives. */
export function lengthPreserving(pairs: readonly Pair[]): boolean {
  return pairs.every((p) => p.refuse !== undefined || p.from.length === p.to.length);
}

/** Request body pairs: own placeholders of secrets that opt into body substitution, and every foreign one (refused). */
export function requestBodyPairs(mine: readonly Routed[], foreign: readonly Routed[]): Pair[] {
  return [
    ...mine.filter((s) => s.body).map((s) => ({ from: Buffer.from(s.placeholder), to: Buffer.from(s.value), secret: s.secret })),
    ...foreign.map((s) => ({ from: Buffer.from(s.placeholder), to: Buffer.alloc(0), refuse: s.secret })),
  ];
}

/** Values shorter than this are not replaced in responses: they would corrupt ordinary bodies. */
export const MIN_ECHO_BYTES = 8;

/** Response pairs: every value of the conversation back to its placeholder. */
export function responsePairs(subs: readonly Routed[]): Pair[] {
  return subs.filter((s) => Buffer.byteLength(s.value) >= MIN_ECHO_BYTES).map((s) => ({ from: Buffer.from(s.value), to: Buffer.from(s.placeholder) }));
}

/** Replaces byte strings in a header value (response side: values to placeholders). */
export function replaceInText(text: string, pairs: readonly Pair[]): string {
  let out = text;
  for (const p of pairs) {
    const from = p.from.toString();
    if (out.includes(from)) out = out.split(from).join(p.to.toString());
  }
  return out;
}

/**
 * Streaming replacement across chunk boundaries. It holds back only a tail that is a prefix of
 * some `from` (a blind maxLen-1 hold-back delayed SSE ticks by ~600 ms), so a match split over two
 * chunks is still found and a refused placeholder never leaves, even in part.
 */
export class Replacer extends Transform {
  private carry: Buffer = Buffer.alloc(0);
  private readonly maxLen: number;

  /** `before` runs (and is awaited) before a chunk with substitutions of these secrets is passed on: the audit hook. */
  constructor(
    private readonly pairs: readonly Pair[],
    private readonly before?: (secrets: string[]) => Promise<void> | undefined,
  ) {
    super();
    this.maxLen = Math.max(0, ...pairs.map((p) => p.from.length));
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const work = this.carry.length > 0 ? Buffer.concat([this.carry, chunk]) : chunk;
    const parts: Buffer[] = [];
    const secrets = new Set<string>();
    let pos = 0;
    for (;;) {
      let at = -1;
      let hit: Pair | undefined;
      for (const p of this.pairs) {
        const i = work.indexOf(p.from, pos);
        if (i !== -1 && (at === -1 || i < at)) [at, hit] = [i, p];
      }
      if (hit === undefined) break;
      if (hit.refuse !== undefined) {
        callback(new ForeignPlaceholderError(hit.refuse));
        return;
      }
      if (hit.secret !== undefined) secrets.add(hit.secret);
      parts.push(work.subarray(pos, at), hit.to);
      pos = at + hit.from.length;
    }
    const keep = work.length - this.heldTail(work, pos);
    parts.push(work.subarray(pos, keep));
    this.carry = Buffer.from(work.subarray(keep));
    const out = parts.length === 1 ? parts[0] : Buffer.concat(parts);
    const waiting = secrets.size > 0 ? this.before?.([...secrets]) : undefined;
    if (waiting === undefined) {
      callback(null, out);
      return;
    }
    waiting.then(() => callback(null, out), (error: unknown) => callback(error as Error));
  }

  override _flush(callback: TransformCallback): void {
    callback(null, this.carry);
  }

  /** Length of the longest tail of `work` (after `pos`) that could start some `from`. */
  private heldTail(work: Buffer, pos: number): number {
    for (let k = Math.min(this.maxLen - 1, work.length - pos); k > 0; k--) {
      const tail = work.subarray(work.length - k);
      if (this.pairs.some((p) => p.from.subarray(0, k).equals(tail))) return k;
    }
    return 0;
  }
}
