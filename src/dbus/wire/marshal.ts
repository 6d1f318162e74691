/**
 * Marshalling values into the D-Bus wire format, little-endian (D-Bus specification, "Marshaling
 * (Wire Format)"): every value starts at a multiple of its alignment, counted from the start of the
 * message, the gap filled with NUL bytes; strings are a UINT32 byte length, UTF-8 and a NUL;
 * signatures a BYTE length, ASCII and a NUL; arrays a UINT32 byte length (padding before the first
 * element not counted), then the elements; structs start at a multiple of 8; variants are a
 * signature followed by one value of that type.
 */
import { MalformedMessage } from './malformed.js';
import { alignmentOf, parseSignature, parseSingleType, type WireType } from './signature.js';

/** A value to marshal: a string for s/o/g, a number for y/u, an array for a/(…), a WireVariant for v. */
export type WireValue = string | number | readonly WireValue[] | WireVariant;

export interface WireVariant {
  readonly signature: string;
  readonly value: WireValue;
}

/** The specification's limit on an array's length in bytes. */
export const MAX_ARRAY_BYTES = 64 * 1024 * 1024;

/** Marshals `values` as `signature`, the first value at `offset` bytes into the message. */
export function marshal(signature: string, values: readonly WireValue[], offset = 0): Buffer {
  const types = parseSignature(signature);
  if (types.length !== values.length) {
    throw new MalformedMessage(`${values.length} values for signature ${JSON.stringify(signature)}`);
  }
  const writer = new Writer(offset);
  types.forEach((type, i) => writer.write(type, values[i] as WireValue));
  return writer.bytes();
}

class Writer {
  private buf = Buffer.alloc(256);
  private length = 0;

  /** `base`: where in the message this buffer starts, which alignment is counted from. */
  constructor(private readonly base: number) {}

  bytes(): Buffer {
    return this.buf.subarray(0, this.length);
  }

  write(type: WireType, value: WireValue): void {
    switch (type.code) {
      case 'y':
        this.uint(value, 1, 0xff);
        return;
      case 'u':
        this.uint(value, 4, 0xffffffff);
        return;
      case 's':
      case 'o':
        this.string(value);
        return;
      case 'g':
        this.signature(value);
        return;
      case 'v': {
        if (!isVariant(value)) throw new MalformedMessage('a variant value is not {signature, value}');
        this.signature(value.signature);
        this.write(parseSingleType(value.signature), value.value);
        return;
      }
      case 'a':
        this.array(type.element, value);
        return;
      case '(': {
        if (!Array.isArray(value) || value.length !== type.fields.length) {
          throw new MalformedMessage(`a struct value does not have ${type.fields.length} fields`);
        }
        this.align(8);
        type.fields.forEach((field, i) => this.write(field, value[i] as WireValue));
        return;
      }
    }
  }

  private uint(value: WireValue, size: 1 | 4, max: number): void {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
      throw new MalformedMessage(`a value does not fit an unsigned ${size * 8}-bit integer`);
    }
    this.align(size);
    this.reserve(size);
    if (size === 1) this.buf.writeUInt8(value, this.length);
    else this.buf.writeUInt32LE(value, this.length);
    this.length += size;
  }

  private string(value: WireValue): void {
    if (typeof value !== 'string') throw new MalformedMessage('a string value is not a string');
    if (value.includes('\0')) throw new MalformedMessage('a string holds a NUL character');
    // Lone surrogates become U+FFFD, as with dbus-next: the bytes are always valid UTF-8.
    const bytes = Buffer.from(value, 'utf8');
    this.uint(bytes.length, 4, 0xffffffff);
    this.raw(bytes);
    this.raw(NUL);
  }

  private signature(value: WireValue): void {
    if (typeof value !== 'string') throw new MalformedMessage('a signature value is not a string');
    parseSignature(value);
    this.uint(value.length, 1, 0xff);
    this.raw(Buffer.from(value, 'latin1'));
    this.raw(NUL);
  }

  private array(element: WireType, value: WireValue): void {
    if (!Array.isArray(value)) throw new MalformedMessage('an array value is not an array');
    this.uint(0, 4, 0); // the length, filled in below
    const lengthAt = this.length - 4;
    this.align(alignmentOf(element));
    const start = this.length;
    for (const item of value as readonly WireValue[]) this.write(element, item);
    const bytes = this.length - start;
    if (bytes > MAX_ARRAY_BYTES) throw new MalformedMessage('an array is longer than 64 MiB');
    this.buf.writeUInt32LE(bytes, lengthAt);
  }

  private align(n: number): void {
    const pad = (n - ((this.base + this.length) % n)) % n;
    this.reserve(pad);
    this.buf.fill(0, this.length, this.length + pad);
    this.length += pad;
  }

  private raw(bytes: Buffer): void {
    this.reserve(bytes.length);
    bytes.copy(this.buf, this.length);
    this.length += bytes.length;
  }

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const grown = Buffer.alloc(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(grown, 0, 0, this.length);
    this.buf = grown;
  }
}

const NUL = Buffer.from([0]);

function isVariant(value: WireValue): value is WireVariant {
  return typeof value === 'object' && !Array.isArray(value);
}
