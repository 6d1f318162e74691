/**
 * ACL policies: a parser for the HCL subset Vault policies use (`path "..." { capabilities = [...] }`)
 * and a matcher that ports hashicorp/vault vault/policy.go (parsePaths) and vault/acl.go (NewACL,
 * AllowOperation, CheckAllowedFromNonExactPaths), so "which rule wins" is Vault's answer:
 * an exact path first; otherwise, among the longest matching `*` prefix and every matching `+`
 * pattern, the one whose first wildcard comes latest, then non-prefix over prefix, then fewer `+`,
 * then the longer pattern. Deny by default; `deny` beats anything on the same path.
 * (developer.hashicorp.com/vault/docs/concepts/policies, "Policy syntax" and "Priority matching".)
 */
import type { Operation } from './http.js';

export const CAPABILITIES = ['create', 'read', 'update', 'delete', 'list', 'patch', 'sudo', 'deny'] as const;
export type Capability = (typeof CAPABILITIES)[number];

export interface PathRule {
  /** As written, without a leading "/", with the trailing "*" kept. */
  readonly pattern: string;
  readonly capabilities: ReadonlySet<Capability>;
}

/** Vault's built-in "default" policy, reduced to the paths this server implements. */
export const DEFAULT_POLICY_HCL = `
path "auth/token/lookup-self" { capabilities = ["read"] }
path "auth/token/renew-self" { capabilities = ["update"] }
path "auth/token/revoke-self" { capabilities = ["update"] }
path "sys/wrapping/unwrap" { capabilities = ["update"] }
`;

export class PolicyError extends Error {
  override name = 'PolicyError';
}

export function parsePolicy(hcl: string): PathRule[] {
  return new Parser(tokenize(hcl)).policy();
}

/** Named policies, as `vault policy write` keeps them. */
export class PolicyStore {
  readonly #policies = new Map<string, readonly PathRule[]>([['default', parsePolicy(DEFAULT_POLICY_HCL)]]);

  write(name: string, hcl: string): void {
    const key = name.toLowerCase();
    if (key === 'root') throw new PolicyError('cannot update root policy');
    if (key === '') throw new PolicyError('policy name must not be empty');
    this.#policies.set(key, parsePolicy(hcl));
  }

  /** Policies that do not exist are skipped, as Vault's policy store does. */
  acl(names: readonly string[]): Acl {
    if (names.includes('root')) return Acl.root();
    return new Acl(names.flatMap((n) => this.#policies.get(n) ?? []));
  }
}

interface Permissions {
  deny: boolean;
  readonly caps: Set<Capability>;
}

interface Candidate {
  readonly firstWildcard: number;
  readonly isPrefix: boolean;
  readonly wildcards: number;
  readonly pattern: string;
  readonly perms: Permissions;
}

const OPERATION_CAPABILITY: Readonly<Record<Operation, Capability>> = {
  read: 'read',
  list: 'list',
  create: 'create',
  update: 'update',
  delete: 'delete',
  patch: 'patch',
};

export class Acl {
  readonly #exact = new Map<string, Permissions>();
  readonly #prefix = new Map<string, Permissions>();
  readonly #segment = new Map<string, Permissions>();
  #root = false;

  static root(): Acl {
    const acl = new Acl([]);
    acl.#root = true;
    return acl;
  }

  constructor(rules: readonly PathRule[]) {
    for (const rule of rules) {
      const { table, key } = this.#slot(rule.pattern);
      const existing = table.get(key);
      if (existing === undefined) {
        table.set(key, { deny: rule.capabilities.has('deny'), caps: new Set(rule.capabilities) });
      } else if (existing.deny) {
        // NewACL: an explicit deny already recorded keeps everything else out.
      } else if (rule.capabilities.has('deny')) {
        existing.deny = true;
        existing.caps.clear();
        existing.caps.add('deny');
      } else {
        for (const c of rule.capabilities) existing.caps.add(c);
      }
    }
  }

  /** policy.go parsePaths: `+` makes a segment-wildcard rule (its "*" kept), else "*" a prefix rule. */
  #slot(pattern: string): { table: Map<string, Permissions>; key: string } {
    if (pattern === '+' || pattern.includes('/+') || pattern.startsWith('+/')) {
      return { table: this.#segment, key: pattern };
    }
    if (pattern.endsWith('*')) return { table: this.#prefix, key: pattern.slice(0, -1) };
    return { table: this.#exact, key: pattern };
  }

  allows(requestPath: string, operation: Operation): boolean {
    if (this.#root) return true;
    const path = requestPath.replace(/^\/+/, '');
    const perms = this.#permissionsFor(path, operation);
    if (perms === undefined || perms.deny) return false;
    return perms.caps.has(OPERATION_CAPABILITY[operation]);
  }

  /** acl.go AllowOperation: exact match, then (for lists) without the trailing slash, then globs. */
  #permissionsFor(path: string, operation: Operation): Permissions | undefined {
    const exact = this.#exact.get(path);
    if (exact !== undefined) return exact;
    if (operation === 'list') {
      const trimmed = path.endsWith('/') ? path.slice(0, -1) : path;
      const exactTrimmed = this.#exact.get(trimmed);
      if (exactTrimmed !== undefined) return exactTrimmed;
      if (path.endsWith('/')) {
        const fromGlobs = this.#nonExact(trimmed);
        if (fromGlobs !== undefined) return fromGlobs;
      }
    }
    return this.#nonExact(path);
  }

  /** acl.go CheckAllowedFromNonExactPaths (without the bare-mount variant). */
  #nonExact(path: string): Permissions | undefined {
    const candidates: Candidate[] = [];
    let longest: string | undefined;
    for (const prefix of this.#prefix.keys()) {
      if (path.startsWith(prefix) && (longest === undefined || prefix.length > longest.length))
        longest = prefix;
    }
    if (longest !== undefined) {
      const perms = this.#prefix.get(longest);
      if (perms !== undefined) {
        candidates.push({
          firstWildcard: longest.length,
          isPrefix: true,
          wildcards: 0,
          pattern: longest,
          perms,
        });
      }
    }

    const parts = path.split('/');
    for (const [full, perms] of this.#segment) {
      const candidate = matchSegmentPattern(full, parts, perms);
      if (candidate !== undefined) candidates.push(candidate);
    }
    return candidates.reduce<Candidate | undefined>(
      (best, c) => (best === undefined || compareCandidates(c, best) > 0 ? c : best),
      undefined,
    )?.perms;
  }
}

function matchSegmentPattern(
  full: string,
  parts: readonly string[],
  perms: Permissions,
): Candidate | undefined {
  const isPrefix = full.endsWith('*');
  const pattern = isPrefix ? full.slice(0, -1) : full;
  const ruleParts = pattern.split('/');
  if (parts.length < ruleParts.length) return undefined;
  if (!isPrefix && parts.length !== ruleParts.length) return undefined;
  let wildcards = 0;
  for (const [i, rulePart] of ruleParts.entries()) {
    const part = parts[i] ?? '';
    if (rulePart === '+') {
      wildcards++;
    } else if (rulePart === part) {
      // literal segment matches
    } else if (isPrefix && i === ruleParts.length - 1 && part.startsWith(rulePart)) {
      // the last segment of a "...*" rule is a string prefix
    } else {
      return undefined;
    }
  }
  return { firstWildcard: full.indexOf('+'), isPrefix, wildcards, pattern, perms };
}

/** acl.go's `less`, as a comparator: > 0 when a has the higher priority. */
function compareCandidates(a: Candidate, b: Candidate): number {
  if (a.firstWildcard !== b.firstWildcard) return a.firstWildcard - b.firstWildcard;
  if (a.isPrefix !== b.isPrefix) return a.isPrefix ? -1 : 1;
  if (a.wildcards !== b.wildcards) return b.wildcards - a.wildcards;
  if (a.pattern.length !== b.pattern.length) return a.pattern.length - b.pattern.length;
  return a.pattern < b.pattern ? -1 : a.pattern > b.pattern ? 1 : 0;
}

type Token =
  | { readonly kind: 'string'; readonly value: string; readonly line: number }
  | { readonly kind: 'ident'; readonly value: string; readonly line: number }
  | { readonly kind: 'punct'; readonly value: string; readonly line: number };

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  let line = 1;
  while (i < source.length) {
    const ch = source[i] ?? '';
    if (ch === '\n') {
      line++;
      i++;
    } else if (/\s/.test(ch)) {
      i++;
    } else if (ch === '#' || source.startsWith('//', i)) {
      while (i < source.length && source[i] !== '\n') i++;
    } else if (source.startsWith('/*', i)) {
      const end = source.indexOf('*/', i + 2);
      if (end < 0) throw new PolicyError(`line ${line}: unterminated comment`);
      line += source.slice(i, end).split('\n').length - 1;
      i = end + 2;
    } else if (ch === '"') {
      let value = '';
      i++;
      while (source[i] !== '"') {
        if (i >= source.length || source[i] === '\n')
          throw new PolicyError(`line ${line}: unterminated string`);
        if (source[i] === '\\') i++;
        value += source[i] ?? '';
        i++;
      }
      i++;
      tokens.push({ kind: 'string', value, line });
    } else if ('{}[]=,'.includes(ch)) {
      tokens.push({ kind: 'punct', value: ch, line });
      i++;
    } else {
      const ident = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(source.slice(i))?.[0];
      if (ident === undefined)
        throw new PolicyError(`line ${line}: unexpected character ${JSON.stringify(ch)}`);
      tokens.push({ kind: 'ident', value: ident, line });
      i += ident.length;
    }
  }
  return tokens;
}

class Parser {
  #pos = 0;

  constructor(private readonly tokens: readonly Token[]) {}

  policy(): PathRule[] {
    const rules: PathRule[] = [];
    while (this.#pos < this.tokens.length) {
      this.#expect('ident', 'path');
      const pattern = this.#expect('string').replace(/^\//, '');
      if (pattern.includes('+*')) {
        throw new PolicyError(`path "${pattern}": invalid use of wildcards ('+*' is forbidden)`);
      }
      this.#expect('punct', '{');
      const capabilities = new Set<Capability>();
      while (!this.#peekIs('punct', '}')) {
        const key = this.#expect('ident');
        if (key !== 'capabilities') {
          throw new PolicyError(`path "${pattern}": "${key}" is not supported by the Vault test server`);
        }
        this.#expect('punct', '=');
        for (const cap of this.#stringList()) {
          if (!(CAPABILITIES as readonly string[]).includes(cap)) {
            throw new PolicyError(`path "${pattern}": invalid capability "${cap}"`);
          }
          capabilities.add(cap as Capability);
        }
      }
      this.#expect('punct', '}');
      // policy.go: "deny" replaces every other capability on the same rule.
      rules.push({ pattern, capabilities: capabilities.has('deny') ? new Set(['deny']) : capabilities });
    }
    return rules;
  }

  #stringList(): string[] {
    this.#expect('punct', '[');
    const values: string[] = [];
    while (!this.#peekIs('punct', ']')) {
      values.push(this.#expect('string'));
      if (!this.#peekIs('punct', ']')) this.#expect('punct', ',');
    }
    this.#expect('punct', ']');
    return values;
  }

  #peekIs(kind: Token['kind'], value: string): boolean {
    const t = this.tokens[this.#pos];
    return t !== undefined && t.kind === kind && t.value === value;
  }

  #expect(kind: Token['kind'], value?: string): string {
    const t = this.tokens[this.#pos];
    if (t === undefined) throw new PolicyError(`unexpected end of policy, expected ${value ?? kind}`);
    if (t.kind !== kind || (value !== undefined && t.value !== value)) {
      throw new PolicyError(`line ${t.line}: expected ${value ?? kind}, found ${JSON.stringify(t.value)}`);
    }
    this.#pos++;
    return t.value;
  }
}
