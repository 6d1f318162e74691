// Bundles the libvirt qemu hook into one executable file. libvirt runs it on every guest start,
// so its start-up time is part of every VM start (target: ≤ 1.3 × `node -e 0`):
//
//   node scripts/build-hook.mjs [--node /usr/bin/node] [--outfile dist/hook/vfbroker-qemu-hook.cjs]
//
// - The shebang names node by absolute path (default: the node running this script): libvirt gives
//   hooks only PATH, HOME, USER, LOGNAME, TMPDIR, LD_* and LC_ALL=C, so `/usr/bin/env node` may not
//   find it.
// - The output is CommonJS: Node runs it without starting its ESM loader (a tenth of the budget),
//   and it runs the same whatever it is named, e.g. /etc/libvirt/hooks/qemu.d/vfbroker without an
//   extension. (This package is "type": "module", hence the .cjs name in dist/.)
// - The file is a small loader with the bundled hook as a string, which it compiles with a V8 code
//   cache made by an earlier run (src/hooks/code-cache.ts): Node 20 has no compile cache for user
//   code, and compiling the bundle cost about 5 ms of every guest start.
// - The D-Bus client is the hook's own wire client (src/dbus/wire/, a few kB), not dbus-next: loading
//   dbus-next and the Node built-ins it pulls in cost more than the whole start-up budget
//   (docs/decisions/0007-hook-dbus-wire-client.md). The build fails if dbus-next creeps back in.
// - The sysfs simulator (350 kB with zod and yaml) serves only simulated hosts: the demo, the tests,
//   the benches, which run the hook from the build tree. It is written next to the hook
//   (vfbroker-sysfs-simulator.cjs) and loaded from there when the settings name a simulator; the
//   installed hook, which reads /sys, does not carry it: reading, scanning and hashing it cost
//   about 3 ms of every start.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { chmod, mkdir } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(fileURLToPath(import.meta.url), '../..');
const { values } = parseArgs({
  options: {
    node: { type: 'string', default: process.execPath },
    outfile: { type: 'string', default: 'dist/hook/vfbroker-qemu-hook.cjs' },
  },
});

if (!isAbsolute(values.node) || /\s/.test(values.node)) {
  process.stderr.write(
    `build-hook: --node must be an absolute path without spaces, got ${JSON.stringify(values.node)}\n`,
  );
  process.exit(64);
}

const outfile = resolve(root, values.outfile);
const SIMULATOR_FILE = 'vfbroker-sysfs-simulator.cjs';
const common = {
  absWorkingDir: root,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // Less text to read and scan on every start; names stay so stack traces remain readable.
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
  metafile: true,
};
await mkdir(dirname(outfile), { recursive: true });

// The simulator, for the build tree only.
await build({
  ...common,
  entryPoints: ['src/sysfs/persistent.ts'],
  outfile: join(dirname(outfile), SIMULATOR_FILE),
});

// The hook itself, bundled; it becomes a string in the executable file (below). Its import of the
// simulator turns into a require of the file next to the hook, made when a simulated host is used.
const hook = await build({
  ...common,
  entryPoints: ['src/hooks/qemu-hook-main.ts'],
  outfile: 'hook-main.cjs',
  write: false,
  legalComments: 'eof',
  plugins: [
    {
      name: 'simulator-beside-the-hook',
      setup(b) {
        b.onResolve({ filter: /\/sysfs\/persistent\.js$/ }, () => ({
          path: 'simulator',
          namespace: 'beside',
        }));
        b.onLoad({ filter: /.*/, namespace: 'beside' }, () => ({
          contents: `
import { join } from 'node:path';
import { VfbError } from './src/errors.ts';
const file = join(__dirname, ${JSON.stringify(SIMULATOR_FILE)});
let simulator;
try {
  simulator = require(file);
} catch (err) {
  throw new VfbError('NOT_FOUND', 'a simulated host needs ' + file + ', which only the build tree has', {
    hint: 'run the hook from the build tree (npm run build); an installed hook reads /sys',
    cause: err,
  });
}
export const openSimulatedSysfs = simulator.openSimulatedSysfs;
`,
          loader: 'js',
          resolveDir: root,
        }));
      },
    },
  ],
});
const dbusNext = Object.keys(hook.metafile.inputs).filter((input) =>
  input.includes('node_modules/dbus-next/'),
);
if (dbusNext.length > 0) {
  process.stderr.write(
    `build-hook: dbus-next got into the hook (${dbusNext[0]}): the hook uses src/dbus/wire/ only; find the import that pulls it in\n`,
  );
  process.exit(70);
}

// The executable: the loader, which runs that string through V8's code cache.
const result = await build({
  ...common,
  entryPoints: ['src/hooks/qemu-hook-loader.ts'],
  outfile,
  banner: { js: `#!${values.node}` },
  define: {
    HOOK_SOURCE: JSON.stringify(hook.outputFiles[0].text),
    HOOK_BUILD: JSON.stringify(createHash('sha256').update(hook.outputFiles[0].text).digest('hex')),
  },
});
await chmod(outfile, 0o755);
const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
process.stdout.write(`build-hook: wrote ${outfile} (${bytes} bytes, node ${values.node})\n`);
