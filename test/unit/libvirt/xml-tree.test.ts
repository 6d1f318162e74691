import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isVfbError } from '../../../src/errors.js';
import { DEFAULT_XML_LIMITS, parseXml, type XmlElement } from '../../../src/libvirt/xml-tree.js';

function refuses(source: string, message: RegExp, limits = DEFAULT_XML_LIMITS): void {
  assert.throws(
    () => parseXml(source, 'input', limits),
    (err: unknown) =>
      isVfbError(err, 'INVALID_ARGUMENT') && message.test(err.message) && !err.message.includes('\n'),
  );
}

function walk(el: XmlElement): XmlElement[] {
  return [el, ...el.children.flatMap(walk)];
}

describe('parseXml refuses what libvirt never sends', () => {
  it('an entity bomb (its DOCTYPE is refused before any expansion)', () => {
    const lol = [`<!ENTITY lol "lol">`];
    for (let i = 1; i < 10; i++) lol.push(`<!ENTITY lol${i} "${`&lol${i === 1 ? '' : i - 1};`.repeat(10)}">`);
    refuses(
      `<?xml version="1.0"?><!DOCTYPE lolz [${lol.join('')}]><domain>&lol9;</domain>`,
      /^input has a DOCTYPE declaration, which libvirt never sends at 1:/,
    );
  });

  it('a DOCTYPE with an external entity', () => {
    refuses(
      `<!DOCTYPE domain [<!ENTITY xxe SYSTEM "file:///etc/shadow">]><domain><name>&xxe;</name></domain>`,
      /has a DOCTYPE declaration/,
    );
    refuses(`<!DOCTYPE domain SYSTEM "http://example.com/domain.dtd"><domain/>`, /has a DOCTYPE declaration/);
  });

  it('entities other than the predefined five', () => {
    refuses(`<domain><name>&nbsp;</name></domain>`, /is not well-formed XML \(1:20: undefined entity\.\)/);
  });

  it('processing instructions and declared encodings other than UTF-8', () => {
    refuses(`<domain><?php echo 1; ?></domain>`, /has a processing instruction/);
    refuses(
      `<?xml version="1.0" encoding="ISO-8859-1"?><domain/>`,
      /declares encoding "ISO-8859-1"; only UTF-8 is accepted/,
    );
  });

  it('garbage, truncation and empty input', () => {
    refuses('this is not xml', /is not well-formed XML/);
    refuses('\u0000\u0001binary', /is not well-formed XML/);
    refuses(`<domain><name>g</name>`, /is not well-formed XML/);
    refuses('', /^input is empty$/);
    refuses('  \n', /^input is empty$/);
    refuses(`<domain><q:x/></domain>`, /unbound namespace prefix/);
  });

  it('documents over the size, depth or element cap', () => {
    const limits = { maxChars: 1000, maxDepth: 8, maxElements: 50 };
    refuses(`<a>${' '.repeat(1000)}</a>`, /^input is larger than 1000 characters$/, limits);
    refuses(`${'<a>'.repeat(9)}${'</a>'.repeat(9)}`, /^input nests deeper than 8 elements at 1:/, limits);
    refuses(`<a>${'<b/>'.repeat(50)}</a>`, /^input has more than 50 elements at 1:/, limits);
  });

  it('a deeply nested document within the size cap, at the default limits', () => {
    refuses(`${'<a>'.repeat(100_000)}${'</a>'.repeat(100_000)}`, /nests deeper than 64 elements/);
  });
});

describe('parseXml reads what libvirt sends', () => {
  it('expands the predefined entities, character references and CDATA', () => {
    const doc = parseXml(`<a x='&lt;&amp;&#x41;&#66;'>&quot;&apos;<![CDATA[<raw>]]></a>`, 'input');
    assert.equal(doc.root.attributes.get('x'), '<&AB');
    assert.equal(doc.root.text, `"'<raw>`);
  });

  it('records where every element starts and ends, with CRLF and astral characters before it', () => {
    const source = `<?xml version='1.0'?>\r\n<!-- 😀 -->\r\n<d a="1">\r\n  <e/>\r\n  <f  b='x' >t😀</f >\r\n</d>\r\n`;
    const doc = parseXml(source, 'input');
    const slices = walk(doc.root).map((el) => ({
      whole: source.slice(el.start, el.end),
      startTag: source.slice(el.start, el.startTagEnd),
    }));
    assert.deepEqual(slices, [
      { whole: `<d a="1">\r\n  <e/>\r\n  <f  b='x' >t😀</f >\r\n</d>`, startTag: `<d a="1">` },
      { whole: '<e/>', startTag: '<e/>' },
      { whole: `<f  b='x' >t😀</f >`, startTag: `<f  b='x' >` },
    ]);
  });

  it('resolves namespaces declared on the root for any prefix', () => {
    const doc = parseXml(`<d xmlns:z='urn:z'><z:e/><e xmlns='urn:y'/></d>`, 'input');
    assert.deepEqual(
      doc.root.children.map((c) => [c.local, c.uri, c.prefix]),
      [
        ['e', 'urn:z', 'z'],
        ['e', 'urn:y', ''],
      ],
    );
  });
});
