/**
 * Reading values out of the D-Bus wire format, in the byte order the message declares (the bus
 * relays a peer's message in the peer's byte order). Every length is checked against the bytes
 * there are, padding must be NUL, strings valid UTF-8 without NUL, and a value of a type the wire
 * client does not support is refused (see signature.ts): a malformed message throws
 * MalformedMessage and is never half-read.
 */
import { MalformedMessage } from './malformed.js';
import { MAX_ARRAY_BYTES } from './marshal.js';
import { alignmentOf, parseSingleType, type WireType } from './signature.js';

/** Variants may nest; the specification allows 64 levels of containers in all. */
const MAX_NESTING = 64;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A value read back: strings for s/o/g, numbers for y/u, arrays for a/(…), and for v its value. */
export type ReadValue = string | number | ReadValue[];

export class Reader {
  /**
   * @param buf the bytes, from the start of the message or of a part of it aligned to 8
   * @param base where `buf` starts in the message, which alignment is counted from
   */
  constructor(
    private readonly buf: Buffer,
    private readonly littleEndian: boolean,
    private offset = 0,
    private readonly base = 0,
  ) {}

  get position(): number {
    return this.offset;
  }

  read(type: WireType, depth = 0): ReadValue {
    if (depth > MAX_NESTING) throw new MalformedMessage('values nested deeper than 64');
    switch (type.code) {
      case 'y':
        return this.byte();
      case 'u':
        return this.uint32();
      case 's':
      case 'o':
        return this.text(this.uint32());
      case 'g':
        return this.text(this.byte());
      case 'v':
        return this.variant(depth).value;
      case 'a':
        return this.array(type.element, depth);
      case '(':
        this.align(8);
        return type.fields.map((field) => this.read(field, depth + 1));
    }
  }

  /** A VARIANT: its signature, and its value read by that signature. */
  variant(depth = 0): { signature: string; value: ReadValue } {
    const signature = this.text(this.byte());
    return { signature, value: this.read(parseSingleType(signature), depth + 1) };
  }

  /** Moves to the next multiple of `n`, checking that the bytes skipped are NUL. */
  align(n: number): void {
    const pad = (n - ((this.base + this.offset) % n)) % n;
    this.need(pad);
    for (let i = 0; i < pad; i++) {
      if (this.buf[this.offset + i] !== 0) throw new MalformedMessage('padding is not NUL');
    }
    this.offset += pad;
  }

  byte(): number {
    this.need(1);
    return this.buf[this.offset++] as number;
  }

  uint32(): number {
    this.align(4);
    this.need(4);
    const v = this.littleEndian ? this.buf.readUInt32LE(this.offset) : this.buf.readUInt32BE(this.offset);
    this.offset += 4;
    return v;
  }

  private text(length: number): string {
    this.need(length + 1);
    const bytes = this.buf.subarray(this.offset, this.offset + length);
    if (this.buf[this.offset + length] !== 0) throw new MalformedMessage('a string is not NUL-terminated');
    if (bytes.includes(0)) throw new MalformedMessage('a string holds a NUL byte');
    let s: string;
    try {
      s = utf8.decode(bytes);
    } catch {
      throw new MalformedMessage('a string is not valid UTF-8');
    }
    this.offset += length + 1;
    return s;
  }

  private array(element: WireType, depth: number): ReadValue[] {
    const length = this.uint32();
    if (length > MAX_ARRAY_BYTES) throw new MalformedMessage('an array is longer than 64 MiB');
    this.align(alignmentOf(element));
    this.need(length);
    const end = this.offset + length;
    const items: ReadValue[] = [];
    while (this.offset < end) items.push(this.read(element, depth + 1));
    if (this.offset !== end) throw new MalformedMessage('an array element runs past the array');
    return items;
  }

  private need(n: number): void {
    if (this.offset + n > this.buf.length) throw new MalformedMessage('truncated');
  }
}
