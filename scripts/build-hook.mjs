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
// - The D-Bus client is the hook's own wire client (src/dbus/wire/, a few kB), not dbus-next: loading
//   dbus-next and the Node built-ins it pulls in cost more than the whole start-up budget
//   (docs/decisions/0007-hook-dbus-wire-client.md). The build fails if dbus-next creeps back in.
// - The sysfs simulator (with zod and yaml) is needed only on a simulated host (the demo, the tests).
//   Bundled as code, V8 would pre-parse all of it on every start; it is embedded as a string instead
//   and compiled on first use, so the hook stays one self-contained file.
import { build } from 'esbuild';
import { chmod, mkdir } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
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

const common = {
  absWorkingDir: root,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // Less text to parse on every start; names stay so stack traces remain readable.
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
};

// Modules the hook needs only sometimes, embedded as strings and compiled on first use: the sysfs
// simulator, only on a simulated host (the demo).
const LAZY = [
  { filter: /\/sysfs\/persistent\.js$/, entry: 'src/sysfs/persistent.ts', exports: ['openSimulatedSysfs'] },
];

// The embedded code gets the bundle's own `require` (it only asks for Node built-ins): making one
// with node:module's createRequire would cost more start-up time for the same thing.
async function embedded(lazy) {
  const out = await build({ ...common, entryPoints: [lazy.entry], outfile: 'lazy.cjs', write: false });
  const exported = lazy.exports.map((name) => `export const ${name} = module.exports.${name};`).join('\n');
  return `
import { runInThisContext } from 'node:vm';
const code = ${JSON.stringify(out.outputFiles[0].text)};
const module = { exports: {} };
runInThisContext('(function (exports, require, module) {' + code + '\\n})', { filename: ${JSON.stringify(lazy.entry)} })(
  module.exports, require, module);
${exported}
`;
}
const sources = await Promise.all(LAZY.map(embedded));

const outfile = resolve(root, values.outfile);
await mkdir(dirname(outfile), { recursive: true });
const result = await build({
  ...common,
  entryPoints: ['src/hooks/qemu-hook-main.ts'],
  outfile,
  banner: { js: `#!${values.node}` },
  legalComments: 'eof',
  metafile: true,
  plugins: [
    {
      name: 'embedded-lazy-modules',
      setup(b) {
        LAZY.forEach((lazy, i) => {
          b.onResolve({ filter: lazy.filter }, () => ({ path: String(i), namespace: 'embedded' }));
        });
        b.onLoad({ filter: /.*/, namespace: 'embedded' }, (args) => ({
          contents: sources[Number(args.path)],
          loader: 'js',
          resolveDir: root,
        }));
      },
    },
  ],
});
const dbusNext = Object.keys(result.metafile.inputs).filter((input) =>
  input.includes('node_modules/dbus-next/'),
);
if (dbusNext.length > 0) {
  process.stderr.write(
    `build-hook: dbus-next got into the hook (${dbusNext[0]}): the hook uses src/dbus/wire/ only; find the import that pulls it in\n`,
  );
  process.exit(70);
}
await chmod(outfile, 0o755);
const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
process.stdout.write(`build-hook: wrote ${outfile} (${bytes} bytes, node ${values.node})\n`);
