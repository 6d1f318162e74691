import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as z from 'zod';
import { VfbError } from '../../../src/errors.js';
import { assertNoSecretsIn } from '../../support/log-capture.js';
import { integer, mapping } from '../../../src/config/schema.js';
import { MAX_FILE_BYTES, YamlSource, loadYamlFile } from '../../../src/config/yaml-source.js';

const FILE = '/etc/vfbroker/test.yaml';

/** The CONFIG_INVALID error that fn throws; asserts it is one line. */
function configError(fn: () => unknown): VfbError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof VfbError, `expected a VfbError, got ${String(err)}`);
    assert.equal(err.code, 'CONFIG_INVALID');
    assert.ok(!err.message.includes('\n'), 'the message must be one line');
    return err;
  }
  assert.fail('expected CONFIG_INVALID');
}

async function rejectsConfig(p: Promise<unknown>): Promise<VfbError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof VfbError);
    assert.equal(err.code, 'CONFIG_INVALID');
    assert.ok(!err.message.includes('\n'));
    return err;
  }
  assert.fail('expected CONFIG_INVALID');
}

const parseError = (text: string) => configError(() => YamlSource.parse(text, FILE)).message;

describe('YamlSource.parse', () => {
  it('returns the document as plain values', () => {
    const source = YamlSource.parse('a: 1\nb: [x, "y"]\nc: {d: true, e: null}\n', FILE);
    assert.deepEqual(source.data, { a: 1, b: ['x', 'y'], c: { d: true, e: null } });
    assert.equal(source.name, FILE);
  });

  it('reports YAML syntax errors with their position', () => {
    assert.equal(
      parseError('a: [1, 2\nb: 3\n'),
      `${FILE}:2:1: invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]`,
    );
    assert.equal(
      parseError('a:\n\tb: 1\n'),
      `${FILE}:2:1: invalid YAML: Tabs are not allowed as indentation`,
    );
    assert.equal(
      parseError('a: b: c\n'),
      `${FILE}:1:4: invalid YAML: Nested mappings are not allowed in compact mappings`,
    );
  });

  it('names a duplicate key', () => {
    assert.equal(parseError('store: 1\nlog: 2\nstore: 3\n'), `${FILE}:3:1: duplicate key "store"`);
  });

  it('accepts one document only', () => {
    assert.match(
      parseError('a: 1\n---\nb: 2\n'),
      /^\/etc\/vfbroker\/test\.yaml:2:1: invalid YAML: Source contains multiple documents/,
    );
  });

  it('rejects tags outside the core schema, custom or YAML 1.1', () => {
    assert.equal(
      parseError('a: !!binary aGVsbG8=\n'),
      `${FILE}:1:4: invalid YAML: Unresolved tag: tag:yaml.org,2002:binary`,
    );
    assert.equal(parseError('a: 1\nb: !vault x\n'), `${FILE}:2:4: invalid YAML: Unresolved tag: !vault`);
    assert.match(parseError('s: !!set {a}\n'), /:1:4: invalid YAML: Unresolved tag: tag:yaml\.org,2002:set$/);
  });

  it('keeps merge keys as plain keys (YAML 1.2), so a schema rejects them', () => {
    assert.deepEqual(YamlSource.parse('x: &x {a: 1}\ny: {<<: *x}\n', FILE).data, {
      x: { a: 1 },
      y: { '<<': { a: 1 } },
    });
  });

  it('accepts string keys only', () => {
    assert.equal(
      parseError('? [a]\n: 1\n'),
      `${FILE}:1:3: invalid YAML: With stringKeys, all keys must be strings`,
    );
  });

  it('rejects control characters with their position', () => {
    assert.equal(parseError('a: 1\nb: x\u0001y\n'), `${FILE}:2:5: control character U+0001 is not allowed`);
    assert.equal(parseError('a: "\u001b[31m"\n'), `${FILE}:1:5: control character U+001B is not allowed`);
  });

  it('rejects __proto__ keys', () => {
    assert.equal(parseError('a:\n  __proto__: {x: 1}\n'), `${FILE}:2:3: the key "__proto__" is not allowed`);
  });

  it('rejects an empty file, a comment-only file and a root that is not a mapping', () => {
    assert.equal(parseError(''), `${FILE}:1:1: the file is empty; expected a mapping of settings`);
    assert.equal(
      parseError('# nothing here\n\n'),
      `${FILE}:1:1: the file is empty; expected a mapping of settings`,
    );
    assert.equal(parseError('- a\n- b\n'), `${FILE}:1:1: expected a mapping at the top level, found a list`);
    assert.equal(
      parseError('\n\nhello\n'),
      `${FILE}:3:1: expected a mapping at the top level, found "hello"`,
    );
    assert.equal(parseError('42\n'), `${FILE}:1:1: expected a mapping at the top level, found 42`);
  });
});

describe('YamlSource.parse resource limits', () => {
  it('stops a billion-laughs alias bomb', () => {
    let bomb = 'a0: &a0 [x, x, x, x, x, x, x, x, x]\n';
    for (let i = 1; i < 10; i++)
      bomb += `a${i}: &a${i} [${Array.from({ length: 9 }, () => `*a${i - 1}`).join(', ')}]\n`;
    assert.equal(parseError(bomb), `${FILE}:2:10: too many alias expansions (at most 32)`);
  });

  it('accepts a few aliases', () => {
    const source = YamlSource.parse('common: &c {mtu: 9000}\npfs: [{options: *c}, {options: *c}]\n', FILE);
    assert.deepEqual(source.data, {
      common: { mtu: 9000 },
      pfs: [{ options: { mtu: 9000 } }, { options: { mtu: 9000 } }],
    });
  });

  it('rejects an alias inside the node it refers to, and an alias to nothing', () => {
    assert.equal(parseError('a: &a [1, *a]\n'), `${FILE}:1:11: alias *a is inside the node it refers to`);
    assert.equal(parseError('a: *nowhere\n'), `${FILE}:1:4: alias *nowhere has no anchor &nowhere before it`);
  });

  it('rejects 100 levels of nesting, in every style', () => {
    const flow = 'a: ' + '['.repeat(100) + ']'.repeat(100) + '\n';
    const block = Array.from({ length: 100 }, (_, i) => `${' '.repeat(i)}k:`).join('\n') + ' x\n';
    const compact = 'a:\n' + '  ' + '- '.repeat(100) + 'x\n';
    const flowMaps = 'a: ' + '{b: '.repeat(100) + '1' + '}'.repeat(100) + '\n';
    for (const text of [flow, block, compact, flowMaps]) {
      assert.match(
        parseError(text),
        /^\/etc\/vfbroker\/test\.yaml:\d+:\d+: nesting too deep: vfbroker reads at most 32 levels of mappings and lists$/,
      );
    }
  });

  it('stops deep nesting before the parser recurses, even filling the size cap', () => {
    const half = MAX_FILE_BYTES / 2 - 4;
    assert.equal(
      parseError('a: ' + '['.repeat(half) + ']'.repeat(half)),
      `${FILE}:1:129: nesting too deep: vfbroker reads at most 32 levels of mappings and lists`,
    );
  });

  it('accepts 32 levels, and counts levels through aliases', () => {
    const nested = (n: number) => '['.repeat(n) + ']'.repeat(n);
    assert.ok(YamlSource.parse(`a: ${nested(31)}\n`, FILE));
    // The root mapping is level 1, so the 32nd bracket is level 33: that is where the error points.
    assert.match(parseError(`a: ${nested(32)}\n`), /:1:35: nesting too deep/);
    // 20 levels under an anchor, used 20 levels down: 41 levels once expanded.
    assert.match(
      parseError(`x: &x ${nested(20)}\ny: ${'['.repeat(20)}*x${']'.repeat(20)}\n`),
      /nesting too deep/,
    );
  });
});

describe('YamlSource.read', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfbroker-yaml-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads a file and names it in errors', async () => {
    const path = join(dir, 'ok.yaml');
    await writeFile(path, 'a: 1\n');
    assert.deepEqual((await YamlSource.read(path)).data, { a: 1 });
    await writeFile(path, 'a: 1\nb: [\n');
    assert.match(
      (await rejectsConfig(YamlSource.read(path))).message,
      new RegExp(`^${path}:\\d+:\\d+: invalid YAML: `),
    );
  });

  it('refuses a 5 MB file without parsing it', async () => {
    const path = join(dir, 'big.yaml');
    await writeFile(path, 'a: ' + 'x'.repeat(5 * 1024 * 1024) + '\n');
    const err = await rejectsConfig(YamlSource.read(path));
    assert.equal(err.message, `${path}:1:1: the file is larger than 1 MiB (5 MiB)`);
  });

  it('takes a smaller cap', async () => {
    const path = join(dir, 'small.yaml');
    await writeFile(path, 'a: 12345\n');
    assert.equal(
      (await rejectsConfig(YamlSource.read(path, { maxBytes: 4 }))).message,
      `${path}:1:1: the file is larger than 4 bytes (9 bytes)`,
    );
  });

  it('refuses what is not UTF-8 or not a regular file', async () => {
    const path = join(dir, 'latin1.yaml');
    await writeFile(path, Buffer.from([0x61, 0x3a, 0x20, 0xe9, 0x0a]));
    assert.equal(
      (await rejectsConfig(YamlSource.read(path))).message,
      `${path}:1:1: the file is not valid UTF-8`,
    );
    assert.equal((await rejectsConfig(YamlSource.read(dir))).message, `${dir}:1:1: not a regular file`);
    const fifo = join(dir, 'fifo.yaml');
    execFileSync('mkfifo', [fifo]);
    assert.equal((await rejectsConfig(YamlSource.read(fifo))).message, `${fifo}:1:1: not a regular file`);
  });

  it('says why a file cannot be opened', async () => {
    const path = join(dir, 'missing.yaml');
    const err = await rejectsConfig(YamlSource.read(path));
    assert.equal(err.message, `${path}: cannot open the file (ENOENT)`);
    assert.equal(err.hint, 'check that the file exists and that vfbroker may read it');
  });

  it('loadYamlFile validates against any schema', async () => {
    const path = join(dir, 'schema.yaml');
    await writeFile(path, 'port: 8200\n');
    assert.deepEqual(await loadYamlFile(path, mapping({ port: integer(1, 65535) })), { port: 8200 });
    await writeFile(path, 'port: 0\n');
    assert.equal(
      (await rejectsConfig(loadYamlFile(path, mapping({ port: integer(1, 65535) })))).message,
      `${path}:1:1: port: expected an integer from 1 to 65535, found 0`,
    );
  });
});

describe('YamlSource.validate', () => {
  const schema = mapping({
    name: z.string().optional(),
    items: z.array(mapping({ size: integer(0, 10), label: z.string().optional() })).optional(),
  });

  it('returns the validated data', () => {
    assert.deepEqual(YamlSource.parse('items:\n  - size: 3\n', FILE).validate(schema), {
      items: [{ size: 3 }],
    });
  });

  it('reports the first problem in the file, with the key path and a count of the rest', () => {
    const source = YamlSource.parse('items:\n  - size: 3\n  - size: eleven\n  - size: 12\nname: 5\n', FILE);
    const err = configError(() => source.validate(schema));
    assert.equal(
      err.message,
      `${FILE}:3:5: items[1].size: expected an integer from 0 to 10, found "eleven" (and 2 more problems)`,
    );
    assert.deepEqual(err.details, { file: FILE, line: 3, column: 5, path: 'items[1].size' });
  });

  it('points at an unknown key and suggests the known one', () => {
    const source = YamlSource.parse('items:\n  - size: 1\n    lable: x\n', FILE);
    assert.equal(
      configError(() => source.validate(schema)).message,
      `${FILE}:3:5: items[0]: unknown key "lable" (did you mean "label"?)`,
    );
  });

  it('prefers the unknown key to the missing key it was meant to be', () => {
    const source = YamlSource.parse('items:\n  - sise: 1\n', FILE);
    assert.equal(
      configError(() => source.validate(schema)).message,
      `${FILE}:2:5: items[0]: unknown key "sise" (did you mean "size"?) (and 1 more problem)`,
    );
  });

  it('puts a missing key at its mapping', () => {
    const source = YamlSource.parse('items:\n  - label: x\n', FILE);
    assert.equal(
      configError(() => source.validate(schema)).message,
      `${FILE}:2:5: items[0].size: missing (expected an integer from 0 to 10)`,
    );
  });

  it('follows aliases to where the value was written', () => {
    const source = YamlSource.parse('x: &bad {size: 99}\nitems: [*bad]\n', FILE);
    assert.deepEqual(source.locate(['items', 0, 'size']), { file: FILE, line: 1, column: 10 });
  });

  it('never echoes a value long enough to be a secret', () => {
    const token = 'hvs.CAESIJlWTYlq3qzMOnr6HNIYFk8dZbYpXm';
    const uuid = '8f5c0e9a-3f4e-4d8b-9a51-7c2e1b0d6f3a';
    for (const text of [
      `items: [{size: "${token}"}]\n`,
      `items: [{size: 1, ${uuid}: 2}]\n`,
      `items: [{size: "${uuid.replaceAll('-', '')}"}]\n`,
    ]) {
      const err = configError(() => YamlSource.parse(text, FILE).validate(schema));
      assertNoSecretsIn(
        `${err.message} ${err.hint} ${JSON.stringify(err.details)}`,
        [token, uuid],
        'a config error',
      );
      assert.match(err.message, /a string of \d+ characters/);
    }
  });
});
