/**
 * PCI addresses in the kernel's sysfs form, `DDDD:BB:DD.F`. Anything that ends up in a sysfs path
 * goes through parsePciAddress first: the strict grammar below admits no `/`, `..`, NUL or spaces,
 * so a validated address can be joined to a path without escaping it.
 */
import { VfbError } from '../errors.js';

declare const brand: unique symbol;
/** A validated, canonical PCI address: lower-case hex, `%04x:%02x:%02x.%x` as the kernel prints it. */
export type PciAddress = string & { readonly [brand]: 'PciAddress' };

export interface PciAddressParts {
  readonly domain: number;
  readonly bus: number;
  readonly slot: number;
  readonly function: number;
}

// Linux prints domains with at least four digits; VMD domains (0x10000 and up) take more.
const CANONICAL = /^([0-9a-f]{4,8}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/;
// What a person types: upper case, or no domain as lspci prints it.
const LENIENT = /^(?:([0-9a-fA-F]{1,8}):)?([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})\.([0-7])$/;

const MAX_INPUT = 32;

export interface ParseOptions {
  /** Accept upper case, short fields and a missing domain (`3B:2.1`), as a person would type. */
  readonly lenient?: boolean;
}

export function parsePciAddress(input: string, options: ParseOptions = {}): PciAddress {
  // Parse leniently either way, so that a strict caller is told the canonical spelling.
  const formatted = formatPciAddress(parsePciAddressParts(input, { lenient: true }));
  if (!options.lenient && formatted !== input) {
    throw invalid(input, `not in canonical form (expected ${formatted})`);
  }
  return formatted;
}

export function isPciAddress(input: unknown): input is PciAddress {
  return typeof input === 'string' && CANONICAL.test(input) && formatChecked(input) === input;
}

export function parsePciAddressParts(input: string, options: ParseOptions = {}): PciAddressParts {
  if (typeof input !== 'string') throw invalid(String(input), 'not a string');
  if (input.length > MAX_INPUT) throw invalid(input, 'too long');
  const m = (options.lenient ? LENIENT : CANONICAL).exec(input);
  if (!m) throw invalid(input, 'expected DDDD:BB:DD.F (hex domain, bus, device; function 0-7)');
  const domain = m[1] === undefined ? 0 : parseInt(m[1], 16);
  const parts = {
    domain,
    bus: parseInt(m[2] as string, 16),
    slot: parseInt(m[3] as string, 16),
    function: parseInt(m[4] as string, 16),
  };
  checkRanges(parts, () => input);
  return parts;
}

export function formatPciAddress(parts: PciAddressParts): PciAddress {
  checkRanges(parts, () => JSON.stringify(parts));
  const hex = (n: number, w: number) => n.toString(16).padStart(w, '0');
  return `${hex(parts.domain, 4)}:${hex(parts.bus, 2)}:${hex(parts.slot, 2)}.${parts.function.toString(16)}` as PciAddress;
}

/**
 * libvirt's `<address domain= bus= slot= function=/>`: each attribute is read with strtoul base 0
 * (virXMLPropUInt), so `0x3b` is hex, `073` octal and `59` decimal. libvirt itself prints hex, but
 * hand-written definitions use all three.
 */
export function parseLibvirtPciAddress(attrs: {
  readonly domain?: string | undefined;
  readonly bus?: string | undefined;
  readonly slot?: string | undefined;
  readonly function?: string | undefined;
}): PciAddress {
  const shown = `domain=${q(attrs.domain)} bus=${q(attrs.bus)} slot=${q(attrs.slot)} function=${q(attrs.function)}`;
  const field = (name: keyof PciAddressParts, value: string | undefined, optional: boolean): number => {
    if (value === undefined) {
      if (optional) return 0;
      throw invalid(shown, `the ${name} attribute is missing`);
    }
    const n = parseCNumber(value);
    if (n === null) throw invalid(shown, `${name}='${value.slice(0, 16)}' is not a number`);
    return n;
  };
  const parts = {
    // libvirt defaults a missing domain and function to 0; bus and slot are required.
    domain: field('domain', attrs.domain, true),
    bus: field('bus', attrs.bus, false),
    slot: field('slot', attrs.slot, false),
    function: field('function', attrs.function, true),
  };
  checkRanges(parts, () => shown);
  return formatPciAddress(parts);
}

/** strtoul with base 0, without its leniencies (no sign, no whitespace, no trailing junk). */
function parseCNumber(s: string): number | null {
  let n: number;
  if (/^0[xX][0-9a-fA-F]{1,8}$/.test(s)) n = parseInt(s.slice(2), 16);
  else if (/^0[0-7]{1,11}$/.test(s)) n = parseInt(s, 8);
  else if (/^[1-9][0-9]{0,9}$/.test(s)) n = parseInt(s, 10);
  else if (s === '0') n = 0;
  else return null;
  return Number.isSafeInteger(n) ? n : null;
}

/** `shown`: the input as the error quotes it, made only for an error (it runs on every call). */
function checkRanges(p: PciAddressParts, shown: () => string): void {
  const bad = !inRange(p.domain, 0xffffffff)
    ? 'domain'
    : !inRange(p.bus, 0xff)
      ? 'bus'
      : !inRange(p.slot, 0x1f)
        ? 'slot'
        : !inRange(p.function, 7)
          ? 'function'
          : null;
  if (bad) throw invalid(shown(), `${bad} out of range`);
}

function inRange(n: number, max: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= max;
}

function formatChecked(s: string): string | null {
  try {
    return formatPciAddress(parsePciAddressParts(s));
  } catch {
    return null;
  }
}

function q(v: string | undefined): string {
  return v === undefined ? '-' : `'${v.slice(0, 16)}'`;
}

/** The longest valid address (an 8-digit domain); anything longer is not echoed back. */
const MAX_SHOWN = 16;

function invalid(input: string, why: string): VfbError {
  // Show the input escaped, and not at all when it is long: it is untrusted, may hold control
  // characters, and a token passed where an address belongs must not end up in a message or a log.
  const shown = input.length <= MAX_SHOWN ? JSON.stringify(input) : `(a ${input.length}-character string)`;
  return new VfbError('INVALID_ARGUMENT', `invalid PCI address ${shown}: ${why}`, {
    hint: 'write it as the kernel does, e.g. 0000:3b:02.1',
  });
}
