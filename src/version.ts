/** vfbroker's version, reported by `--version` and the broker's Status(). Kept equal to package.json by a test. */
export const VERSION = '0.1.0';
