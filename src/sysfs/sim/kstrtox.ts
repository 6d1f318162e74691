/**
 * The kernel's parsers for values written to sysfs (lib/kstrtox.c), so the simulator accepts and
 * refuses exactly what a store function would: `0x4`, `+4`, `04` and `4\n` are numbers, `4 `, `-1`
 * and `` are not. They return null where the kernel returns an error.
 */

/**
 * kstrtou16(s, 0, &v): optional `+`, base from the prefix (`0x` hex, `0` octal, else decimal), at
 * least one digit, one optional trailing newline, nothing else; above 0xffff is out of range.
 */
export function kstrtou16(s: string): { value: number } | { error: 'EINVAL' | 'ERANGE' } {
  let rest = s.startsWith('+') ? s.slice(1) : s;
  let base = 10;
  if (rest.startsWith('0')) {
    if ((rest[1] === 'x' || rest[1] === 'X') && /^[0-9a-fA-F]$/.test(rest[2] ?? '')) {
      base = 16;
      rest = rest.slice(2);
    } else {
      base = 8;
    }
  }
  const digits = base === 16 ? /^[0-9a-fA-F]+/ : base === 8 ? /^[0-7]+/ : /^[0-9]+/;
  const m = digits.exec(rest);
  if (!m) return { error: 'EINVAL' };
  const tail = rest.slice(m[0].length);
  if (tail !== '' && tail !== '\n') return { error: 'EINVAL' };
  // Digits past 16 bits overflow whatever the length; parse at most enough to know.
  const value = parseInt(m[0].replace(/^0+(?=.)/, '').slice(0, 8), base);
  return value > 0xffff ? { error: 'ERANGE' } : { value };
}

/** kstrtobool: y/Y/t/T/1 and on are true, n/N/f/F/0 and off are false, decided by the first letters. */
export function kstrtobool(s: string): boolean | null {
  const first = s.charAt(0);
  if (first !== '' && 'yYtT1'.includes(first)) return true;
  if (first !== '' && 'nNfF0'.includes(first)) return false;
  if (first === 'o' || first === 'O') {
    const second = s.charAt(1).toLowerCase();
    if (second === 'n') return true;
    if (second === 'f') return false;
  }
  return null;
}
