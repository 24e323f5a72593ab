/**
 * The few protobuf encodings io.prometheus.client.MetricFamily needs, written into a ChunkWriter: varints,
 * zigzag, doubles, length-delimited fields. Every nested message's length precedes it, so callers compute
 * sizes with the *Size functions first; numbers are non-negative safe integers unless zigzagged.
 */
import { ChunkWriter } from "./chunk-writer";

export const VARINT = 0;
export const FIXED64 = 1;
export const LEN = 2;

export function varintSize(n: number): number {
  if (n < 128) return 1;
  if (n < 16384) return 2;
  let size = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** sint32/sint64's zigzag: 0, -1, 1, -2, ... become 0, 1, 2, 3, ... */
export function zigzag(n: number): number {
  return n >= 0 ? 2 * n : -2 * n - 1;
}

export function writeVarint(out: ChunkWriter, n: number): void {
  // Bit operations while the number fits 31 bits (nearly always), arithmetic above.
  if (n < 0x80000000) {
    while (n >= 128) {
      out.byte((n & 0x7f) | 0x80);
      n >>>= 7;
    }
    out.byte(n);
    return;
  }
  while (n >= 128) {
    out.byte((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.byte(n);
}

/** Field numbers here are below 16: a tag is one byte. */
export function writeTag(out: ChunkWriter, field: number, wire: number): void {
  out.byte((field << 3) | wire);
}

export function writeDouble(out: ChunkWriter, field: number, v: number): void {
  writeTag(out, field, FIXED64);
  out.doubleLE(v);
}

export const DOUBLE_FIELD_SIZE = 9;

export function writeUint(out: ChunkWriter, field: number, n: number): void {
  writeTag(out, field, VARINT);
  writeVarint(out, n);
}

export function uintFieldSize(n: number): number {
  return 1 + varintSize(n);
}

/** The tag and length of a length-delimited field whose `size` bytes follow. */
export function writeLen(out: ChunkWriter, field: number, size: number): void {
  writeTag(out, field, LEN);
  writeVarint(out, size);
}

export function lenFieldSize(size: number): number {
  return 1 + varintSize(size) + size;
}

/** A field holding a string or an already encoded message, for bytes built once (names, labels). */
export function lenField(field: number, content: Uint8Array): Buffer {
  const head = new ChunkWriter(16);
  writeLen(head, field, content.length);
  return Buffer.concat([...head.finish(), content]);
}
