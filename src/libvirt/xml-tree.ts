/**
 * Untrusted XML (a libvirt domain definition) parsed into a small element tree that remembers where
 * each element sits in the source text, so callers can read it and edit it by splicing the original
 * text instead of re-serialising it.
 *
 * The parser is saxes (docs/decisions/0006-xml-parser.md): strict XML 1.0 with namespaces, no DTD
 * processing at all. On top of it this module refuses anything libvirt never produces: a DOCTYPE
 * (and with it every entity declaration, so entity bombs and external entities cannot even be
 * expressed), documents over a size, depth or element-count cap, and an encoding declaration other
 * than UTF-8. Only the five predefined entities and character references are expanded (saxes
 * rejects any other entity reference as undefined).
 */
import { SaxesParser, type SaxesTagNS } from 'saxes';
import { VfbError } from '../errors.js';

export interface XmlLimits {
  /** Longest document accepted, in UTF-16 code units (at most 3 bytes of UTF-8 each). */
  readonly maxChars: number;
  /** Deepest element nesting accepted; libvirt's domain XML nests about 8 deep. */
  readonly maxDepth: number;
  /** Most elements accepted; bounds the tree's memory whatever the document looks like. */
  readonly maxElements: number;
}

export const DEFAULT_XML_LIMITS: XmlLimits = {
  maxChars: 4 * 1024 * 1024,
  maxDepth: 64,
  maxElements: 100_000,
};

export interface XmlElement {
  /** The qualified name as written (`qemu:override`). */
  readonly name: string;
  readonly local: string;
  /** Namespace URI, "" when none. */
  readonly uri: string;
  readonly prefix: string;
  /** Attribute values by qualified name, entities expanded. */
  readonly attributes: ReadonlyMap<string, string>;
  readonly parent: XmlElement | null;
  readonly children: XmlElement[];
  /** Character data directly inside this element (not in its children), entities expanded. */
  text: string;
  /** Index of the `<` that opens the start tag. */
  readonly start: number;
  /** Index just after the `>` that closes the start tag (the end of `/>` when self-closing). */
  readonly startTagEnd: number;
  /** Index just after the element's last `>`. */
  end: number;
  readonly selfClosing: boolean;
}

export interface XmlDocument {
  /** The source text the positions refer to. */
  readonly source: string;
  readonly root: XmlElement;
}

/** Parses `source` or throws VfbError('INVALID_ARGUMENT') naming `what`, the line and column. */
export function parseXml(source: string, what: string, limits: XmlLimits = DEFAULT_XML_LIMITS): XmlDocument {
  if (source.length > limits.maxChars) {
    throw invalid(what, `is larger than ${limits.maxChars} characters`);
  }
  if (source.trim() === '') throw invalid(what, 'is empty');
  const parser = new SaxesParser({ xmlns: true, position: true });
  const open: XmlElement[] = [];
  let root: XmlElement | null = null;
  let count = 0;
  // saxes reports errors by throwing from write(); a handler that throws stops the parse the same way.
  const refuse = (why: string): never => {
    throw invalid(what, `${why} at ${parser.line}:${parser.column + 1}`);
  };

  parser.on('xmldecl', (decl) => {
    if (decl.encoding !== undefined && !/^utf-?8$/i.test(decl.encoding)) {
      refuse(`declares encoding ${JSON.stringify(decl.encoding.slice(0, 20))}; only UTF-8 is accepted`);
    }
  });
  parser.on('doctype', () => refuse('has a DOCTYPE declaration, which libvirt never sends'));
  parser.on('processinginstruction', () => refuse('has a processing instruction, which libvirt never sends'));
  parser.on('opentag', (tag: SaxesTagNS) => {
    if (++count > limits.maxElements) refuse(`has more than ${limits.maxElements} elements`);
    if (open.length >= limits.maxDepth) refuse(`nests deeper than ${limits.maxDepth} elements`);
    const parent = open.at(-1) ?? null;
    const startTagEnd = parser.position;
    // A start tag contains no `<` (attribute values may not), so the last one before its end opens it.
    const el: XmlElement = {
      name: tag.name,
      local: tag.local,
      uri: tag.uri,
      prefix: tag.prefix,
      attributes: new Map(Object.values(tag.attributes).map((a) => [a.name, a.value])),
      parent,
      children: [],
      text: '',
      start: source.lastIndexOf('<', startTagEnd - 1),
      startTagEnd,
      end: startTagEnd,
      selfClosing: tag.isSelfClosing,
    };
    if (parent) parent.children.push(el);
    else root = el;
    open.push(el);
  });
  parser.on('closetag', () => {
    const el = open.pop();
    if (el) el.end = parser.position;
  });
  const onText = (text: string) => {
    const el = open.at(-1);
    if (el) el.text += text;
  };
  parser.on('text', onText);
  parser.on('cdata', onText);

  try {
    parser.write(source).close();
  } catch (err) {
    if (err instanceof VfbError) throw err;
    // saxes messages look like "3:14: unbound namespace prefix: \"q\"." and quote at most a name.
    throw invalid(
      what,
      `is not well-formed XML (${oneLine(err instanceof Error ? err.message : String(err))})`,
    );
  }
  if (root === null) throw invalid(what, 'has no root element');
  return { source, root };
}

/** The element's children with this namespace URI and local name, in document order. */
export function childrenNamed(el: XmlElement, local: string, uri = ''): XmlElement[] {
  return el.children.filter((c) => c.local === local && c.uri === uri);
}

export function firstChild(el: XmlElement, local: string, uri = ''): XmlElement | undefined {
  return el.children.find((c) => c.local === local && c.uri === uri);
}

export function attr(el: XmlElement, name: string): string | undefined {
  return el.attributes.get(name);
}

function invalid(what: string, why: string): VfbError {
  return new VfbError('INVALID_ARGUMENT', `${what} ${why}`, {
    hint: 'libvirt sends well-formed UTF-8 XML without a DOCTYPE; check what produced this input',
  });
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').slice(0, 120);
}
