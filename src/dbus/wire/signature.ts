/**
 * D-Bus type signatures, parsed into the types the wire client can marshal and unmarshal. Only the
 * codes the hook's calls, their replies and the message header use are supported: BYTE, UINT32,
 * STRING, OBJECT_PATH, SIGNATURE, VARIANT, ARRAY and STRUCT (D-Bus specification, "Type System").
 * Anything else is refused, so a reply of another shape is reported, never half-read.
 */
import { MalformedMessage } from './malformed.js';

export type BasicCode = 'y' | 'u' | 's' | 'o' | 'g';

export type WireType =
  | { readonly code: BasicCode | 'v' }
  | { readonly code: 'a'; readonly element: WireType }
  | { readonly code: '('; readonly fields: readonly WireType[] };

/** The specification's limits: 255 bytes, 32 nested arrays and 32 nested structs. */
const MAX_SIGNATURE = 255;
const MAX_DEPTH = 32;

const BASIC = new Set<string>(['y', 'u', 's', 'o', 'g', 'v']);

/** The single complete types of `signature`, in order. */
export function parseSignature(signature: string): WireType[] {
  if (signature.length > MAX_SIGNATURE) throw new MalformedMessage('a signature is longer than 255 bytes');
  const types: WireType[] = [];
  let at = 0;
  while (at < signature.length) {
    const [type, next] = parseOne(signature, at, 0, 0);
    types.push(type);
    at = next;
  }
  return types;
}

/** Exactly one complete type, as a VARIANT's signature must be. */
export function parseSingleType(signature: string): WireType {
  const types = parseSignature(signature);
  if (types.length !== 1 || types[0] === undefined) {
    throw new MalformedMessage(`variant signature ${JSON.stringify(signature)} is not one complete type`);
  }
  return types[0];
}

/** The alignment of a type's values on the wire. */
export function alignmentOf(type: WireType): number {
  switch (type.code) {
    case 'y':
    case 'g':
    case 'v':
      return 1;
    case 'u':
    case 's':
    case 'o':
    case 'a':
      return 4;
    case '(':
      return 8;
  }
}

function parseOne(sig: string, at: number, arrays: number, structs: number): [WireType, number] {
  const code = sig[at];
  if (code !== undefined && BASIC.has(code)) return [{ code: code as BasicCode | 'v' }, at + 1];
  if (code === 'a') {
    if (arrays >= MAX_DEPTH) throw new MalformedMessage('arrays nested deeper than 32');
    if (at + 1 >= sig.length)
      throw new MalformedMessage(`signature ${JSON.stringify(sig)} ends inside an array`);
    const [element, next] = parseOne(sig, at + 1, arrays + 1, structs);
    return [{ code: 'a', element }, next];
  }
  if (code === '(') {
    if (structs >= MAX_DEPTH) throw new MalformedMessage('structs nested deeper than 32');
    const fields: WireType[] = [];
    let next = at + 1;
    while (sig[next] !== ')') {
      if (next >= sig.length)
        throw new MalformedMessage(`signature ${JSON.stringify(sig)} ends inside a struct`);
      const [field, after] = parseOne(sig, next, arrays, structs + 1);
      fields.push(field);
      next = after;
    }
    if (fields.length === 0) throw new MalformedMessage('empty struct in a signature');
    return [{ code: '(', fields }, next + 1];
  }
  throw new MalformedMessage(
    `unsupported type ${JSON.stringify(code ?? '')} in signature ${JSON.stringify(sig)}`,
  );
}
