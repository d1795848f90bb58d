/**
 * A reader of ClickHouse's RowBinary output (the rows one after the other, little-endian, a String
 * as its length in unsigned LEB128 then its bytes): for answers of many megabytes, where text
 * formats cost more to print and parse than the query. Integers are read as JS numbers and
 * refused beyond 2^53 (never rounded).
 */
export class RowBinaryReader {
  private pos = 0;
  private readonly view: DataView;
  private readonly text: Buffer;

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get done(): boolean {
    return this.pos >= this.bytes.length;
  }

  private take(n: number): number {
    const at = this.pos;
    this.pos += n;
    if (this.pos > this.bytes.length) throw new RangeError('RowBinary answer ends inside a row');
    return at;
  }

  varint(): number {
    let value = 0;
    let scale = 1;
    for (;;) {
      const b = this.bytes[this.take(1)]!;
      value += (b & 0x7f) * scale;
      if (b < 0x80) return value;
      scale *= 128;
      if (scale > 2 ** 49) throw new RangeError('RowBinary length beyond 2^53');
    }
  }

  string(): string {
    const n = this.varint();
    const at = this.take(n);
    return this.text.toString('utf8', at, at + n);
  }

  uint8(): number {
    return this.bytes[this.take(1)]!;
  }

  uint32(): number {
    return this.view.getUint32(this.take(4), true);
  }

  /** Int64 or UInt64 (signed says which) as an exact number. */
  int64(signed = true): number {
    const at = this.take(8);
    const lo = this.view.getUint32(at, true);
    const hi = signed ? this.view.getInt32(at + 4, true) : this.view.getUint32(at + 4, true);
    if (hi >= 2 ** 21 || hi < -(2 ** 21)) throw new RangeError('RowBinary integer beyond 2^53');
    return hi * 2 ** 32 + lo;
  }
}
