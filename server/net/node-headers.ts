// Web Headers over a Node request's headers, copied only when something changes or lists them.
import type { IncomingHttpHeaders } from "node:http";

/** A header name as the Fetch standard accepts one (an RFC 9110 token). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** The Fetch standard's value normalization: leading and trailing HTTP whitespace removed. */
function normalize(value: string): string {
  const first = value.charCodeAt(0);
  const last = value.charCodeAt(value.length - 1);
  const ws = (c: number) => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
  return ws(first) || ws(last) ? value.replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, "") : value;
}

/**
 * The request headers Connect's adapter would make (nodeHeaderToWebHeader: every header but the
 * pseudo-headers, repeated ones appended in order), answering get and has from Node's object
 * directly. Why: a unary call's interceptors read three or four headers, and appending every one
 * into undici's Headers, validating each name and value, cost more than the reads (bench/README.md).
 * The first change or listing copies them in, exactly as the adapter would, and from then on it
 * is plain Headers; a name Headers would refuse is passed to Headers to refuse.
 */
export class NodeRequestHeaders extends Headers {
  #node: IncomingHttpHeaders | undefined;

  constructor(node: IncomingHttpHeaders) {
    super();
    this.#node = node;
  }

  override get(name: string): string | null {
    const node = this.#node;
    // A name Headers refuses is Headers' to refuse.
    if (node === undefined || !TOKEN.test(name)) return super.get(name);
    const value = node[name.toLowerCase()];
    if (value === undefined) return null;
    if (typeof value === "string") return normalize(value);
    if (Array.isArray(value)) return value.length === 0 ? null : value.map(normalize).join(", ");
    return String(value);
  }

  override has(name: string): boolean {
    if (this.#node === undefined || !TOKEN.test(name)) return super.has(name);
    return this.get(name) !== null;
  }

  override append(name: string, value: string): void {
    this.#copyIn();
    super.append(name, value);
  }

  override set(name: string, value: string): void {
    this.#copyIn();
    super.set(name, value);
  }

  override delete(name: string): void {
    this.#copyIn();
    super.delete(name);
  }

  override forEach(callback: (value: string, key: string, parent: Headers) => void, thisArg?: unknown): void {
    this.#copyIn();
    super.forEach(callback, thisArg);
  }

  override getSetCookie(): string[] {
    this.#copyIn();
    return super.getSetCookie();
  }

  // Not in this project's lib typings (no DOM.Iterable), but every Headers has them.
  entries(): IterableIterator<[string, string]> {
    this.#copyIn();
    return (Headers.prototype as unknown as Iterable<[string, string]> & { entries(): IterableIterator<[string, string]> }).entries.call(this);
  }

  keys(): IterableIterator<string> {
    this.#copyIn();
    return (Headers.prototype as unknown as { keys(): IterableIterator<string> }).keys.call(this);
  }

  values(): IterableIterator<string> {
    this.#copyIn();
    return (Headers.prototype as unknown as { values(): IterableIterator<string> }).values.call(this);
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }

  /** Copies Node's headers in, once, as Connect's adapter converts them. */
  #copyIn(): void {
    const node = this.#node;
    if (node === undefined) return;
    this.#node = undefined;
    for (const key in node) {
      if (key.charCodeAt(0) === 58 /* ":" */) continue;
      const value = node[key];
      if (typeof value === "string") super.append(key, value);
      else if (Array.isArray(value)) for (const v of value) super.append(key, v);
      else if (typeof value === "number") super.append(key, String(value));
    }
  }
}
