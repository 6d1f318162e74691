/**
 * Edits to an XML document expressed as splices of its source text, using the positions xml-tree.ts
 * recorded. Whatever an edit does not touch stays byte-for-byte as it was: comments, attribute
 * quoting and order, blank lines, the user's own indentation. Inserted elements follow the
 * surrounding indentation and line endings so the result reads as if libvirt had written it.
 */
import { VfbError } from '../errors.js';
import type { XmlDocument, XmlElement } from './xml-tree.js';

export interface Splice {
  readonly start: number;
  readonly end: number;
  readonly text: string;
}

/** Applies non-overlapping splices (in any order) to the document's source. */
export function applySplices(source: string, splices: readonly Splice[]): string {
  const sorted = [...splices].sort((a, b) => b.start - a.start);
  let out = source;
  let limit = source.length;
  for (const s of sorted) {
    if (s.end > limit || s.start > s.end)
      throw new VfbError('INTERNAL', `overlapping XML edits at offset ${s.start}`);
    out = out.slice(0, s.start) + s.text + out.slice(s.end);
    limit = s.start;
  }
  return out;
}

/** How the document writes line breaks and one level of indentation. */
export interface Layout {
  readonly newline: string;
  readonly unit: string;
}

export function layoutOf(doc: XmlDocument): Layout {
  const newline = doc.source.includes('\r\n') ? '\r\n' : '\n';
  const first = doc.root.children[0];
  const unit = (first && indentOf(doc.source, first)) || '  ';
  return { newline, unit };
}

/** The whitespace before `el` on its line, or null when something else precedes it there. */
export function indentOf(source: string, el: XmlElement): string | null {
  const lineStart = source.lastIndexOf('\n', el.start - 1) + 1;
  const before = source.slice(lineStart, el.start);
  return /^[ \t]*$/.test(before) ? before : null;
}

/** A child element's indentation inside `parent`: that of its first child, else one level deeper. */
export function childIndent(source: string, parent: XmlElement, layout: Layout): string {
  const first = parent.children[0];
  const existing = first ? indentOf(source, first) : null;
  return existing ?? (indentOf(source, parent) ?? '') + layout.unit;
}

/** Lines of an element to insert, each relative to the element's own indentation. */
export type Lines = readonly string[];

function render(lines: Lines, indent: string, layout: Layout): string {
  return lines.map((l) => indent + l).join(layout.newline);
}

/** Inserts `lines` as the last child of `parent`, turning a self-closing parent into an open one. */
export function appendChild(doc: XmlDocument, parent: XmlElement, lines: Lines, layout: Layout): Splice {
  const { source } = doc;
  const indent = childIndent(source, parent, layout);
  const parentIndent = indentOf(source, parent) ?? '';
  const child = render(lines, indent, layout);
  if (parent.selfClosing) {
    // `<a x='1'/>` → `<a x='1'>` + child + `</a>`; `/>` is always the last two characters.
    const text = `>${layout.newline}${child}${layout.newline}${parentIndent}</${parent.name}>`;
    return { start: parent.startTagEnd - 2, end: parent.end, text };
  }
  const last = parent.children.at(-1);
  if (last) return { start: last.end, end: last.end, text: layout.newline + child };
  const closeStart = source.lastIndexOf('</', parent.end - 1);
  const inner = source.slice(parent.startTagEnd, closeStart);
  if (/^\s*$/.test(inner)) {
    return {
      start: parent.startTagEnd,
      end: closeStart,
      text: layout.newline + child + layout.newline + parentIndent,
    };
  }
  return { start: parent.startTagEnd, end: parent.startTagEnd, text: layout.newline + child };
}

/** Removes `el` and, when it sits on its own line, the line break and indentation before it. */
export function removeElement(source: string, el: XmlElement): Splice {
  const indent = indentOf(source, el);
  if (indent === null) return { start: el.start, end: el.end, text: '' };
  let start = el.start - indent.length;
  if (source[start - 1] === '\n') start -= 1;
  if (source[start - 1] === '\r') start -= 1;
  return { start, end: el.end, text: '' };
}

/** Replaces the whole element with `lines`, keeping its position and indentation. */
export function replaceElement(source: string, el: XmlElement, lines: Lines, layout: Layout): Splice {
  const indent = indentOf(source, el) ?? '';
  const [first = '', ...rest] = lines;
  return { start: el.start, end: el.end, text: [first, ...rest.map((l) => indent + l)].join(layout.newline) };
}

/** Adds an attribute at the end of the element's start tag. */
export function addAttribute(el: XmlElement, name: string, value: string): Splice {
  const at = el.startTagEnd - (el.selfClosing ? 2 : 1);
  return { start: at, end: at, text: ` ${name}='${escapeAttribute(value)}'` };
}

/** Removes an attribute (and the whitespace before it) from the element's start tag, if present. */
export function removeAttribute(source: string, el: XmlElement, name: string): Splice | null {
  const tag = source.slice(el.start, el.startTagEnd);
  // The tag was accepted by a strict parser, so this simple grammar is enough to find its attributes.
  const re = /\s+([^\s=/>]+)\s*=\s*(?:"[^"]*"|'[^']*')/g;
  re.lastIndex = 1 + el.name.length;
  for (let m = re.exec(tag); m !== null; m = re.exec(tag)) {
    if (m[1] === name) return { start: el.start + m.index, end: el.start + m.index + m[0].length, text: '' };
  }
  return null;
}

export function escapeAttribute(value: string): string {
  return value.replace(/[&<>'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** `prefix:local`, or just `local` for the default namespace. */
export function qualified(prefix: string, local: string): string {
  return prefix === '' ? local : `${prefix}:${local}`;
}
