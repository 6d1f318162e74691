/** Release numbers of the kernel and of QEMU, as far as the doctor compares them. */

export interface Version {
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
}

/**
 * The `major.minor[.patch]` a release string starts with: `6.8.0-45-generic`, `6.17-rc1`,
 * `6.12.9+bpo-amd64`. null when it starts otherwise.
 */
export function parseVersion(text: string): Version | null {
  const m = /^(\d{1,4})\.(\d{1,4})(?:\.(\d{1,6}))?/.exec(text);
  if (!m) return null;
  return { major: Number(m[1]), minor: Number(m[2]), patch: m[3] === undefined ? 0 : Number(m[3]) };
}

export function atLeast(v: Version, major: number, minor: number, patch = 0): boolean {
  if (v.major !== major) return v.major > major;
  if (v.minor !== minor) return v.minor > minor;
  return v.patch >= patch;
}

export function formatVersion(v: Version): string {
  return `${v.major}.${v.minor}.${v.patch}`;
}
