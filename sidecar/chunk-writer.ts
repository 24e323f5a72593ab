/**
 * Bytes written straight into fixed-size chunks, handed out as each fills: /metrics at 10k services is ~50 MB,
 * and building it as one string, then encoding it, costs more in garbage collection than in formatting. The
 * chunks are recycled once written out, so a scrape needs a few of them, whatever the body's size.
 */
export class ChunkWriter {
  private buf: Buffer;
  private pos = 0;
  private readonly full: Buffer[] = [];
  private readonly spare: Buffer[] = [];

  constructor(private readonly chunkBytes: number) {
    this.buf = Buffer.allocUnsafe(chunkBytes);
  }

  get hasFull(): boolean {
    return this.full.length > 0;
  }

  /** Chunks filled so far, in order, and no longer written to. */
  takeFull(): Buffer[] {
    return this.full.splice(0);
  }

  /** Every byte written and not yet taken, the last chunk possibly partial; the writer is spent. */
  finish(): Buffer[] {
    if (this.pos > 0) this.full.push(this.buf.subarray(0, this.pos));
    this.pos = this.chunkBytes;
    return this.takeFull();
  }

  /** A chunk handed out earlier whose bytes are written out: it can be filled again. */
  recycle(chunk: Buffer): void {
    if (chunk.length === this.chunkBytes) this.spare.push(chunk);
  }

  /** Bytes written and not yet taken. */
  get length(): number {
    return this.full.length * this.chunkBytes + this.pos;
  }

  /** Copies every byte written and not yet taken into `into`; this writer is then empty, its chunks kept. */
  moveTo(into: ChunkWriter): void {
    for (const chunk of this.full) {
      into.bytes(chunk);
      this.spare.push(chunk);
    }
    this.full.length = 0;
    into.bytes(this.buf.subarray(0, this.pos));
    this.pos = 0;
  }

  bytes(b: Uint8Array): void {
    let from = 0;
    while (b.length - from > this.chunkBytes - this.pos) {
      const n = this.chunkBytes - this.pos;
      this.buf.set(b.subarray(from, from + n), this.pos);
      from += n;
      this.pos = this.chunkBytes;
      this.next();
    }
    this.buf.set(from === 0 ? b : b.subarray(from), this.pos);
    this.pos += b.length - from;
  }

  byte(c: number): void {
    if (this.pos === this.chunkBytes) this.next();
    this.buf[this.pos++] = c;
  }

  /** A double, little-endian (protobuf's fixed64), written in place. */
  doubleLE(v: number): void {
    if (this.chunkBytes - this.pos < 8) {
      doubleScratch.writeDoubleLE(v);
      this.bytes(doubleScratch);
      return;
    }
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }

  /** Text known to be ASCII (numbers, names), without encoding it. */
  ascii(s: string): void {
    for (let i = 0; i < s.length; i++) this.byte(s.charCodeAt(i));
  }

  /** A non-negative safe integer, its digits written in place (most samples are counts). */
  digits(n: number): void {
    let len = 1;
    for (let p = 10; p <= n; p *= 10) len++;
    const room = this.chunkBytes - this.pos >= len;
    const into = room ? this.buf : digitScratch;
    let i = room ? this.pos + len : len;
    do {
      const rest = Math.floor(n / 10);
      into[--i] = 48 + n - rest * 10;
      n = rest;
    } while (n > 0);
    if (room) this.pos += len;
    else this.bytes(digitScratch.subarray(0, len));
  }

  private next(): void {
    this.full.push(this.buf);
    this.buf = this.spare.pop() ?? Buffer.allocUnsafe(this.chunkBytes);
    this.pos = 0;
  }
}

/** Digits of a number, or a double, that straddles two chunks. */
const digitScratch = Buffer.alloc(16);
const doubleScratch = Buffer.alloc(8);
