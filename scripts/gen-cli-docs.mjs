// Writes docs/cli.md, the CLI reference, from the compiled command definitions:
//
//   npm run build && node scripts/gen-cli-docs.mjs [--build dist]
//
// --build names the compiled tree to read (default dist/, what `npm run build` writes), for when a
// build went elsewhere (`tsc --outDir .build/<name>`). test/unit/cli/reference.test.ts fails when
// the checked-in docs/cli.md differs from what this writes.
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(fileURLToPath(import.meta.url), '../..');
const { values } = parseArgs({ options: { build: { type: 'string', default: 'dist' } } });
const compiled = (rel) => pathToFileURL(resolve(root, values.build, rel)).href;

const { buildProgram } = await import(compiled('src/cli/program.js'));
const { renderCliReference, CLI_REFERENCE_FILE } = await import(compiled('src/cli/reference.js'));
const target = resolve(root, CLI_REFERENCE_FILE);
await writeFile(target, renderCliReference(buildProgram()));
process.stdout.write(`wrote ${CLI_REFERENCE_FILE}\n`);
