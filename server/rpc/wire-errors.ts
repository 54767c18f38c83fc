// Says where and why a request body failed to decode, in words that never quote the body's bytes.
import { type DescField, type DescMessage, ScalarType } from "@bufbuild/protobuf";

/** The wire types of the protobuf binary format (proto3 has no groups; 6 and 7 do not exist). */
const VARINT = 0;
const I64 = 1;
const LEN = 2;
const I32 = 5;
const WIRE_NAMES = ["varint", "64-bit", "length-delimited", "group start", "group end", "32-bit"];

/** What one value on the wire must look like. */
interface Element {
  wire: number;
  /** Packed repeated scalars may also arrive length-delimited. */
  packable?: boolean;
  utf8?: boolean;
  message?: DescMessage;
  mapEntry?: DescField & { fieldKind: "map" };
}

class WireFault extends Error {}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

function scalarElement(type: ScalarType, utf8 = true): Element {
  switch (type) {
    case ScalarType.STRING:
      return { wire: LEN, utf8 };
    case ScalarType.BYTES:
      return { wire: LEN };
    case ScalarType.DOUBLE:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return { wire: I64, packable: true };
    case ScalarType.FLOAT:
    case ScalarType.FIXED32:
    case ScalarType.SFIXED32:
      return { wire: I32, packable: true };
    default:
      return { wire: VARINT, packable: true };
  }
}

function fieldElement(field: DescField): Element {
  switch (field.fieldKind) {
    case "scalar":
      return scalarElement(field.scalar, field.utf8Validation);
    case "enum":
      return { wire: VARINT };
    case "message":
      return { wire: LEN, message: field.message };
    case "list":
      if (field.listKind === "message") return { wire: LEN, message: field.message };
      return field.listKind === "enum" ? { wire: VARINT, packable: true } : scalarElement(field.scalar, field.utf8Validation);
    case "map":
      return { wire: LEN, mapEntry: field };
  }
}

function mapValueElement(field: DescField & { fieldKind: "map" }): Element {
  if (field.mapKind === "message") return { wire: LEN, message: field.message };
  return field.mapKind === "enum" ? { wire: VARINT } : scalarElement(field.scalar, field.utf8Validation);
}

/** A cursor over the bytes; every fault names the byte offset where it was found. */
class Cursor {
  pos = 0;
  constructor(readonly bytes: Uint8Array) {}

  fault(at: number, name: string, what: string): never {
    throw new WireFault(`${name} at byte ${at}: ${what}`);
  }

  varint(end: number, name: string): number {
    const start = this.pos;
    let value = 0;
    for (let shift = 0; shift < 70; shift += 7) {
      if (this.pos >= end) this.fault(start, name, "truncated varint");
      const byte = this.bytes[this.pos++]!;
      // Lengths and tags fit in 2^53; larger values only matter as "not a length".
      value += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return value;
    }
    return this.fault(start, name, "varint longer than 10 bytes");
  }

  skip(n: number, end: number, at: number, name: string, what: string) {
    if (n > end - this.pos) this.fault(at, name, what);
    this.pos += n;
  }
}

/** Walks `[cur.pos, end)` as the fields of `desc`; throws a WireFault at the first fault. */
function walkMessage(cur: Cursor, desc: DescMessage, end: number, depth: number): void {
  if (depth > 100) cur.fault(cur.pos, desc.typeName, "nested too deep");
  while (cur.pos < end) {
    const tagAt = cur.pos;
    const tag = cur.varint(end, desc.typeName);
    const number = Math.floor(tag / 8);
    const wire = tag % 8;
    if (number === 0) cur.fault(tagAt, desc.typeName, "field number 0");
    if (wire === 6 || wire === 7) cur.fault(tagAt, desc.typeName, `invalid wire type ${wire}`);
    const field = desc.fields.find((f) => f.number === number);
    if (field === undefined) {
      skipUnknown(cur, wire, end, tagAt, `${desc.typeName} unknown field ${number}`);
      continue;
    }
    walkValue(cur, fieldElement(field), wire, end, tagAt, `${desc.typeName}.${field.name}`, depth);
  }
}

function skipUnknown(cur: Cursor, wire: number, end: number, at: number, name: string) {
  if (wire === VARINT) cur.varint(end, name);
  else if (wire === I64) cur.skip(8, end, at, name, "truncated 64-bit value");
  else if (wire === I32) cur.skip(4, end, at, name, "truncated 32-bit value");
  else if (wire === LEN) cur.skip(cur.varint(end, name), end, at, name, "length runs past the end of the message");
  // Groups of unknown fields are legal but rare: leave the verdict to the decoder's own message.
  else throw new WireFault("");
}

function walkValue(cur: Cursor, el: Element, wire: number, end: number, at: number, name: string, depth: number) {
  const packed = el.packable === true && wire === LEN;
  if (wire !== el.wire && !packed) cur.fault(at, name, `wire type ${WIRE_NAMES[wire]} where ${WIRE_NAMES[el.wire]} was expected`);
  if (wire === VARINT) cur.varint(end, name);
  else if (wire === I64) cur.skip(8, end, at, name, "truncated 64-bit value");
  else if (wire === I32) cur.skip(4, end, at, name, "truncated 32-bit value");
  if (wire !== LEN) return;
  const length = cur.varint(end, name);
  const start = cur.pos;
  cur.skip(length, end, at, name, `length ${length} runs past the end of the message`);
  if (packed) {
    cur.pos = start;
    while (cur.pos < start + length) walkValue(cur, { wire: el.wire }, el.wire, start + length, cur.pos, name, depth);
  } else if (el.utf8 === true) {
    try {
      strictUtf8.decode(cur.bytes.subarray(start, start + length));
    } catch {
      cur.fault(start, name, "invalid UTF-8");
    }
  } else if (el.message !== undefined || el.mapEntry !== undefined) {
    cur.pos = start;
    if (el.message !== undefined) walkMessage(cur, el.message, start + length, depth + 1);
    else walkMapEntry(cur, el.mapEntry!, start + length, name, depth + 1);
    cur.pos = start + length;
  }
}

function walkMapEntry(cur: Cursor, field: DescField & { fieldKind: "map" }, end: number, name: string, depth: number) {
  while (cur.pos < end) {
    const tagAt = cur.pos;
    const tag = cur.varint(end, name);
    const number = Math.floor(tag / 8);
    if (number !== 1 && number !== 2) cur.fault(tagAt, name, `map entry has field ${number}`);
    const el = number === 1 ? scalarElement(field.mapKey, field.utf8Validation) : mapValueElement(field);
    walkValue(cur, el, tag % 8, end, tagAt, `${name} ${number === 1 ? "key" : "value"}`, depth);
  }
}

/**
 * Where a binary message fails to decode as `desc`, e.g.
 * "veil.v1.SecretInput.name at byte 9: invalid UTF-8"; undefined when the walk finds no fault
 * (then the decoder's own verdict stands).
 */
export function locateBinaryFault(desc: DescMessage, bytes: Uint8Array): string | undefined {
  const cur = new Cursor(bytes);
  try {
    walkMessage(cur, desc, bytes.length, 0);
  } catch (error) {
    if (error instanceof WireFault && error.message !== "") return error.message;
    if (!(error instanceof WireFault)) throw error;
  }
  return undefined;
}

/** Rules a JSON decode error may name; anything else becomes "invalid value". Never the value itself. */
const JSON_RULES: [RegExp, (m: RegExpMatchArray) => string][] = [
  [/invalid UTF-?8/i, () => "invalid UTF-8"],
  [/out of range/, (m) => `${m.input!.match(/expected \w+ \(\w+\)/)?.[0] ?? "number"} out of range`],
  [/expected (\w+(?: \(\w+\))?)/, (m) => `expected ${m[1]}`],
  [/maximum recursion depth/, () => "nested too deep"],
  [/must not be null/, () => "must not be null"],
  [/set multiple times/, () => "set more than once"],
  [/duplicate (?:map|object) key/, () => "duplicate key"],
  [/unexpected (NaN|infinite)/, (m) => `unexpected ${m[1]} number`],
];

/**
 * Rewrites a protobuf-es JSON decode error (which quotes the offending value, e.g.
 * `expected Array, got "..."`, or the text around a syntax error) into the field and the rule only.
 */
export function describeJsonFault(message: string): string {
  // protobuf-es: "cannot decode field veil.v1.X.y from JSON: ..." / "cannot decode message|enum veil.v1.X from JSON: ..."
  const head = /^cannot decode (field |message |enum )?([\w.]+) from JSON/.exec(message);
  const where = head === null ? "" : `${head[2]}: `;
  const detail = head === null ? message : message.slice(head[0].length);
  // JSON.parse's SyntaxError quotes the text around the fault; keep only its position.
  if (/JSON/.test(detail)) {
    const position = /position (\d+)/.exec(detail)?.[1];
    return `${where}invalid JSON${position === undefined ? "" : ` at position ${position}`}`;
  }
  if (head?.[1] === "enum ") return `${where}unknown enum value`;
  for (const [re, say] of JSON_RULES) {
    const m = detail.match(re);
    if (m !== null) return `${where}${say(m)}`;
  }
  return `${where}invalid value`;
}

/**
 * The first enum field whose JSON value names no value of its enum, e.g.
 * "veil.v1.StartConversationRequest.inject". Connect ignores unknown enum names along with
 * unknown fields (the value silently becomes the zero value), so a typo such as
 * "INJECT_REFERNCED" would mean "inject every declared secret": the guard refuses it instead.
 */
export function findUnknownEnumName(desc: DescMessage, json: unknown, depth = 0): string | undefined {
  if (depth > 100 || typeof json !== "object" || json === null || Array.isArray(json)) return undefined;
  const object = json as Record<string, unknown>;
  for (const field of desc.fields) {
    const value = object[field.jsonName] ?? object[field.name];
    if (value === undefined || value === null) continue;
    const name = `${desc.typeName}.${field.name}`;
    const values = field.fieldKind === "list" || field.fieldKind === "map" ? Object.values(value as object) : [value];
    const enumDesc = field.fieldKind === "enum" || (field.fieldKind === "list" && field.listKind === "enum") || (field.fieldKind === "map" && field.mapKind === "enum") ? field.enum : undefined;
    const messageDesc = field.fieldKind === "message" || (field.fieldKind === "list" && field.listKind === "message") || (field.fieldKind === "map" && field.mapKind === "message") ? field.message : undefined;
    if (enumDesc !== undefined && values.some((v) => typeof v === "string" && !enumDesc.values.some((e) => e.name === v))) return name;
    // Well-known types have their own JSON forms (Timestamp is a string): not plain objects to walk.
    if (messageDesc !== undefined && !messageDesc.typeName.startsWith("google.protobuf.")) {
      for (const v of values) {
        const inner = findUnknownEnumName(messageDesc, v, depth + 1);
        if (inner !== undefined) return inner;
      }
    }
  }
  return undefined;
}
