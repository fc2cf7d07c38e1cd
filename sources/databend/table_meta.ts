/**
 * Decodes the few fields of a Databend `TableMeta` protobuf value
 * (`__fd_table_by_id/<id>`) that a backup needs: the `options` map
 * (field 5, `map<string, string>`) and `drop_on` (field 24). Every other
 * field is skipped by its wire type.
 *
 * @module
 */

/** The fields of `TableMeta` bendsave reads. */
export interface TableMetaInfo {
  /** `TableMeta.options` (`database_id`, `snapshot_location`, `storage_prefix`, …). */
  readonly options: ReadonlyMap<string, string>;
  /** `TableMeta.drop_on` when the table is dropped, else null. */
  readonly dropOn: string | null;
}

const OPTIONS = 5;
const DROP_ON = 24;

class Reader {
  pos = 0;
  constructor(readonly buf: Uint8Array) {}

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      const b = this.buf[this.pos++];
      if (b === undefined) throw new RangeError("TableMeta is truncated inside a varint");
      result += (b & 0x7f) * mul;
      if (b < 0x80) return result;
      mul *= 128;
    }
    throw new RangeError("TableMeta has a varint longer than 10 bytes");
  }

  bytes(): Uint8Array {
    const len = this.varint();
    const end = this.pos + len;
    if (end > this.buf.length) throw new RangeError("TableMeta is truncated inside a field");
    const out = this.buf.subarray(this.pos, end);
    this.pos = end;
    return out;
  }

  skip(wire: number): void {
    switch (wire) {
      case 0:
        this.varint();
        return;
      case 1:
        this.advance(8);
        return;
      case 2:
        this.bytes();
        return;
      case 5:
        this.advance(4);
        return;
      default:
        throw new RangeError(`TableMeta has an unsupported wire type ${wire}`);
    }
  }

  advance(n: number): void {
    if (this.pos + n > this.buf.length) throw new RangeError("TableMeta is truncated");
    this.pos += n;
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

function decodeMapEntry(buf: Uint8Array): [string, string] {
  const r = new Reader(buf);
  let key = "";
  let value = "";
  while (!r.done) {
    const tag = r.varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (field === 1 && wire === 2) key = utf8.decode(r.bytes());
    else if (field === 2 && wire === 2) value = utf8.decode(r.bytes());
    else r.skip(wire);
  }
  return [key, value];
}

/**
 * Decodes `options` and `drop_on` from an encoded `TableMeta`.
 *
 * @throws {RangeError} when the bytes are not a well-formed protobuf message.
 */
export function decodeTableMeta(bytes: Uint8Array): TableMetaInfo {
  const r = new Reader(bytes);
  const options = new Map<string, string>();
  let dropOn: string | null = null;
  while (!r.done) {
    const tag = r.varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (field === 0) throw new RangeError("TableMeta has a field numbered 0");
    if (field === OPTIONS && wire === 2) {
      const [k, v] = decodeMapEntry(r.bytes());
      options.set(k, v);
    } else if (field === DROP_ON && wire === 2) {
      dropOn = utf8.decode(r.bytes());
    } else {
      r.skip(wire);
    }
  }
  return { options, dropOn };
}
