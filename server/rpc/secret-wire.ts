// GetSecretResponse written by hand: the same bytes protobuf-es's toBinary writes, for the read path's reply.
import { toBinary } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { type GetSecretResponse, GetSecretResponseSchema, type LookupSummary, type SecretMeta } from "../../gen/veil/v1/secret_pb.js";

/**
 * Why this exists: protobuf-es encodes reflectively (a field walk, a fork and join per
 * sub-message and map entry), ~16-22 µs for a 70-byte GetSecretResponse here, the largest share of
 * a read's reply after the transport. Written directly it is a fraction of that
 * (bench/README.md, "GetSecret"). Same field order, same presence rules, same map entry shape:
 * test/secret-wire.test.ts compares the bytes with toBinary over random messages and fails
 * when a field is added to any of these messages, so this cannot drift from the schema.
 * A message carrying unknown fields is left to toBinary.
 */
export function encodeGetSecretResponse(message: GetSecretResponse): Uint8Array {
  if (message.$unknown !== undefined || (message.meta?.$unknown ?? message.meta?.lookup?.$unknown ?? message.meta?.createdAt?.$unknown ?? message.meta?.updatedAt?.$unknown) !== undefined) {
    return toBinary(GetSecretResponseSchema, message);
  }
  const w = new Writer();
  if (message.meta !== undefined) w.message(1, message.meta, writeMeta);
  if (message.text !== undefined) w.stringAlways(2, message.text);
  w.map(3, message.fields);
  return w.finish();
}

/** Hand encoders by output message type, for the lean unary path (server/net/grpc-lean.ts). */
export const HAND_ENCODERS: ReadonlyMap<string, (message: never) => Uint8Array> = new Map([[GetSecretResponseSchema.typeName, encodeGetSecretResponse]]);

function writeMeta(w: Writer, m: SecretMeta): void {
  w.string(1, m.name);
  w.string(2, m.description);
  w.map(3, m.metadata);
  w.int64(4, m.version);
  if (m.createdAt !== undefined) w.message(5, m.createdAt, writeTimestamp);
  if (m.updatedAt !== undefined) w.message(6, m.updatedAt, writeTimestamp);
  for (const agent of m.allowedAgents) w.stringAlways(7, agent);
  w.int32(8, m.kind);
  w.string(9, m.session);
  for (const name of m.fieldNames) w.stringAlways(10, name);
  for (const reader of m.agentReaders) w.stringAlways(11, reader);
  for (const host of m.egressHosts) w.stringAlways(12, host);
  if (m.egressBody) w.bool(13, true);
  if (m.lookup !== undefined) w.message(14, m.lookup, writeLookup);
}

function writeTimestamp(w: Writer, t: Timestamp): void {
  w.int64(1, t.seconds);
  w.int32(2, t.nanos);
}

function writeLookup(w: Writer, l: LookupSummary): void {
  w.string(1, l.method);
  w.string(2, l.origin);
  w.string(3, l.jsonPointer);
  w.uint32(4, l.ttlSeconds);
  w.uint32(5, l.timeoutMs);
}

const VARINT = 0;
const LENGTH_DELIMITED = 2;
/** Room for a sub-message's length before its bytes are known (5 bytes: any length up to 4 GiB). */
const LENGTH_ROOM = 5;

/** A growable buffer with the few wire forms these messages use; proto3 implicit presence (zero values skipped) where the schema has it. */
class Writer {
  private buf = Buffer.allocUnsafe(256);
  private pos = 0;

  finish(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }

  string(field: number, value: string): void {
    if (value !== "") this.stringAlways(field, value);
  }

  /** Repeated elements, map entries' halves and explicit-presence fields: written even when empty. */
  stringAlways(field: number, value: string): void {
    this.tag(field, LENGTH_DELIMITED);
    // Worst case 3 bytes per UTF-16 unit; the exact length is written after the bytes are.
    this.room(LENGTH_ROOM + value.length * 3);
    if (value.length < 43) {
      // At most 126 bytes: a one-byte length, written once the bytes are.
      const n = this.buf.write(value, this.pos + 1, "utf8");
      this.buf[this.pos] = n;
      this.pos += 1 + n;
      return;
    }
    this.varint(Buffer.byteLength(value));
    this.pos += this.buf.write(value, this.pos, "utf8");
  }

  map(field: number, entries: { [key: string]: string }): void {
    for (const key of Object.keys(entries)) {
      this.message(field, key, (w, k) => {
        w.stringAlways(1, k);
        w.stringAlways(2, entries[k]!);
      });
    }
  }

  message<T>(field: number, value: T, write: (w: Writer, value: T) => void): void {
    this.tag(field, LENGTH_DELIMITED);
    this.room(LENGTH_ROOM);
    const lengthAt = this.pos;
    this.pos += 1;
    write(this, value);
    const length = this.pos - lengthAt - 1;
    if (length < 128) {
      this.buf[lengthAt] = length;
      return;
    }
    // Longer than one length byte: move the body up to make room for the varint.
    const lengthBytes = varintSize(length);
    this.room(lengthBytes);
    this.buf.copyWithin(lengthAt + lengthBytes, lengthAt + 1, this.pos);
    this.pos = lengthAt;
    this.varint(length);
    this.pos += length;
  }

  /** int64 and uint64 alike: the varint of the value's 64-bit two's complement. */
  int64(field: number, value: bigint): void {
    if (value === 0n) return;
    this.tag(field, VARINT);
    this.varint64(BigInt.asUintN(64, value));
  }

  uint32(field: number, value: number): void {
    if (value === 0) return;
    this.tag(field, VARINT);
    this.varint(value >>> 0);
  }

  /** int32 and enums: a negative value takes ten bytes, sign-extended to 64 bits, as the spec says. */
  int32(field: number, value: number): void {
    if (value === 0) return;
    this.tag(field, VARINT);
    if (value < 0) this.varint64(BigInt.asUintN(64, BigInt(value)));
    else this.varint(value);
  }

  bool(field: number, value: boolean): void {
    this.tag(field, VARINT);
    this.room(1);
    this.buf[this.pos++] = value ? 1 : 0;
  }

  private tag(field: number, wireType: number): void {
    this.varint((field << 3) | wireType);
  }

  /** A non-negative number below 2^32. */
  private varint(value: number): void {
    this.room(LENGTH_ROOM);
    while (value > 0x7f) {
      this.buf[this.pos++] = (value & 0x7f) | 0x80;
      value >>>= 7;
    }
    this.buf[this.pos++] = value;
  }

  private varint64(value: bigint): void {
    if (value < 0x1_0000_0000n) {
      this.varint(Number(value));
      return;
    }
    this.room(10);
    while (value > 0x7fn) {
      this.buf[this.pos++] = Number(value & 0x7fn) | 0x80;
      value >>= 7n;
    }
    this.buf[this.pos++] = Number(value);
  }

  private room(bytes: number): void {
    if (this.pos + bytes <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + bytes));
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }
}

function varintSize(value: number): number {
  let size = 1;
  while (value > 0x7f) {
    value >>>= 7;
    size++;
  }
  return size;
}
