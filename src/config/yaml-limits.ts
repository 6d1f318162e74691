/**
 * Bounds on what a YAML file may make the parser do, checked in two passes.
 *
 * The yaml package composes documents recursively (it overflows the stack near 1,000 levels and,
 * on the way there, a 1 MiB file of brackets costs seconds and hundreds of MB), and its toJS, zod
 * and our own walkers recurse too. So a cheap streaming pass over the lexer's tokens runs first and
 * stops any file that could be deep, and an exact pass over the composed document then enforces the
 * real limit, alias cycles included, before anything is converted to JS values.
 */
import { CST, Lexer, isAlias, isMap, isNode, isScalar, isSeq, type Document, type Node } from 'yaml';

/** Levels of mappings and lists a config file may nest; vfbroker's own files use fewer than 8. */
export const MAX_DEPTH = 32;

/**
 * The first pass over-estimates depth (see estimate below), by at most about a factor of two for
 * files people write, so it stops at a multiple of the real limit; the composer is safe far above it.
 */
const MAX_ESTIMATE = 4 * MAX_DEPTH;

const TOO_DEEP = `nesting too deep: vfbroker reads at most ${MAX_DEPTH} levels of mappings and lists`;

export interface Violation {
  /** Offset into the text where the problem is. */
  readonly offset: number;
  readonly message: string;
}

// C0 controls other than tab, LF and CR, and DEL: YAML forbids them, and they have no business in a
// config file (they would also garble a terminal that prints an error quoting them).
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;

const MARKERS = new Set<string>([CST.DOCUMENT, CST.SCALAR, CST.FLOW_END]);

/**
 * Streaming check before parsing: no control characters, and an upper bound on nesting. The bound
 * for a token is 2 × (open indentation levels) + (block indicators `-`, `?`, `:` earlier on its
 * line) + (open flow brackets): a block collection either indents further than its parent, shares
 * its parent's indentation (a list under a key, at most one per level), or opens on the parent's
 * line after an indicator.
 */
export function prescan(text: string): Violation | null {
  const control = CONTROL.exec(text);
  if (control) {
    const code = text.charCodeAt(control.index).toString(16).padStart(4, '0').toUpperCase();
    return { offset: control.index, message: `control character U+${code} is not allowed` };
  }
  let offset = 0;
  let flow = 0;
  let indent = 0;
  let lineStart = true;
  let indicators = 0;
  const indents: number[] = [];
  for (const token of new Lexer().lex(text)) {
    // The lexer interleaves zero-width markers with slices of the source; only the slices advance.
    if (MARKERS.has(token)) continue;
    const at = offset;
    offset += token.length;
    if (token.endsWith('\n')) {
      lineStart = true;
      indent = 0;
      indicators = 0;
      continue;
    }
    if (token.startsWith('#')) continue;
    if (/^ +$/.test(token)) {
      if (lineStart) indent = token.length;
      continue;
    }
    if (lineStart) {
      lineStart = false;
      if (flow === 0) {
        while (indents.length > 0 && (indents.at(-1) ?? 0) > indent) indents.pop();
        if (indents.length === 0 || (indents.at(-1) ?? 0) < indent) indents.push(indent);
      }
    }
    if (token === '[' || token === '{') flow++;
    else if (token === ']' || token === '}') flow = Math.max(0, flow - 1);
    else if (flow === 0 && (token === '-' || token === '?' || token === ':')) indicators++;
    if (2 * indents.length + indicators + flow > MAX_ESTIMATE) return { offset: at, message: TOO_DEEP };
  }
  return null;
}

export interface NodeViolation {
  readonly node: Node;
  readonly message: string;
}

/**
 * Exact check on the composed document: depth (counting through aliases), aliases that point at
 * nothing or at a node that contains them, and `__proto__` keys, which some consumers of a plain
 * object would treat as its prototype. Iterative and memoised per node, so an alias bomb costs one
 * visit per node rather than one per expansion.
 */
export function checkStructure(doc: Document.Parsed): NodeViolation | null {
  /** Levels of mappings and lists in each finished node, itself included (aliases add none). */
  const depth = new Map<Node, number>();
  const active = new Set<Node>();
  interface Frame {
    readonly node: Node;
    readonly children: readonly Node[];
    next: number;
    deepest: number;
  }
  const frames: Frame[] = [];

  // Starts a node: a violation, or its depth at once (scalars), or a frame to finish later.
  const start = (node: Node): NodeViolation | null => {
    if (isAlias(node)) {
      const target = node.resolve(doc);
      if (target === undefined)
        return { node, message: `alias *${node.source} has no anchor &${node.source} before it` };
      if (active.has(target))
        return { node, message: `alias *${node.source} is inside the node it refers to` };
    }
    if (isMap(node)) {
      const proto = node.items.find((pair) => isScalar(pair.key) && pair.key.value === '__proto__');
      if (proto && isNode(proto.key))
        return { node: proto.key, message: 'the key "__proto__" is not allowed' };
    }
    const children = childrenOf(doc, node);
    if (children.length === 0 && !isMap(node) && !isSeq(node)) {
      depth.set(node, 0);
      return null;
    }
    active.add(node);
    frames.push({ node, children, next: 0, deepest: 0 });
    return null;
  };

  if (doc.contents !== null) {
    const v = start(doc.contents);
    if (v) return v;
  }
  while (frames.length > 0) {
    const frame = frames[frames.length - 1] as Frame;
    const child = frame.children[frame.next];
    if (child !== undefined) {
      const known = depth.get(child);
      if (known === undefined) {
        const v = start(child);
        if (v) return v;
        // A collection pushed its own frame; this one resumes when that one is done.
        if (!depth.has(child)) continue;
      }
      frame.deepest = Math.max(frame.deepest, depth.get(child) ?? 0);
      frame.next++;
      continue;
    }
    frames.pop();
    active.delete(frame.node);
    const own = isAlias(frame.node) ? frame.deepest : frame.deepest + 1;
    if (own > MAX_DEPTH) return { node: firstTooDeep(doc, frame.node, depth), message: TOO_DEEP };
    depth.set(frame.node, own);
  }
  return null;
}

/** Down the deepest path from `top`, the first collection past the limit: where to point the user. */
function firstTooDeep(doc: Document.Parsed, top: Node, depth: ReadonlyMap<Node, number>): Node {
  let node = top;
  let level = isAlias(top) ? 0 : 1;
  while (level <= MAX_DEPTH) {
    let next: Node | undefined;
    for (const child of childrenOf(doc, node))
      if (next === undefined || (depth.get(child) ?? 0) > (depth.get(next) ?? 0)) next = child;
    if (next === undefined) break;
    node = next;
    if (!isAlias(node)) level++;
  }
  return node;
}

function childrenOf(doc: Document.Parsed, node: Node): Node[] {
  if (isAlias(node)) {
    const target = node.resolve(doc);
    return target === undefined ? [] : [target];
  }
  if (isMap(node)) return node.items.map((pair) => pair.value).filter(isNode);
  if (isSeq(node)) return node.items.filter(isNode);
  return [];
}
