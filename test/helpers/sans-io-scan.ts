// The sans-IO guard (issue 9, issue 14): walks a compiled module's static import graph and
// reports what would let it do I/O or read time by itself: an I/O module imported anywhere in
// the graph, or a timer, clock or process global used in any module of it. Scans tokens, not
// text, so comments and strings neither hide an import nor raise a false alarm.
import { readFileSync } from 'node:fs';
import path from 'node:path';

/** Modules that do I/O, start timers or touch processes (with or without the node: prefix). */
export const FORBIDDEN_MODULES = /^(node:)?(fs|fs\/promises|net|dgram|timers|timers\/promises|child_process|http|https|http2|tls|worker_threads|cluster|os|readline|perf_hooks|process)$/;

/** Globals that schedule work or read the time or the process: the driver passes `now` in instead. */
export const FORBIDDEN_GLOBALS: ReadonlySet<string> = new Set([
  'setTimeout', 'setInterval', 'setImmediate', 'clearTimeout', 'clearInterval', 'clearImmediate',
  'queueMicrotask', 'performance', 'process', 'globalThis',
]);

export interface Token {
  kind: 'ident' | 'private' | 'string' | 'template' | 'regex' | 'number' | 'punct';
  value: string;
  line: number;
  /** On a `)`: it closed `if (...)`, `while (...)` or `for (...)`, so a `/` after it starts a regex. */
  control?: boolean;
}

/** Keywords after which a `/` starts a regular expression rather than a division. */
const BEFORE_REGEX = new Set(['return', 'typeof', 'instanceof', 'in', 'of', 'new', 'delete', 'void', 'throw', 'case', 'do', 'else', 'yield', 'await']);

const isIdStart = (c: string): boolean => /[A-Za-z_$]/.test(c) || c > '\x7f';
const isIdPart = (c: string): boolean => /[\w$]/.test(c) || c > '\x7f';

/** Splits JavaScript into tokens; comments and whitespace are dropped, template text is one token per span. */
export function tokenize(src: string): Token[] {
  const tokens: Token[] = [];
  /** One entry per open `{` or template `${`, so that `}` knows which it closes. */
  const braces: ('brace' | 'template')[] = [];
  /** One entry per open `(`: whether it follows if, while or for. */
  const parens: boolean[] = [];
  let i = 0;
  let line = 1;
  const push = (kind: Token['kind'], value: string, at: number): void => {
    tokens.push({ kind, value, line: at });
  };
  const regexAllowed = (): boolean => {
    const prev = tokens[tokens.length - 1];
    if (prev === undefined) return true;
    if (prev.kind === 'ident') return BEFORE_REGEX.has(prev.value);
    if (prev.kind === 'punct') return prev.value === ')' ? prev.control === true : prev.value !== ']' && prev.value !== '}';
    return false;
  };
  /** Template text from i (just past a backtick or a `}` closing `${`) to the closing backtick or next `${`. */
  const templateSpan = (): void => {
    const at = line;
    let text = '';
    while (i < src.length) {
      const c = src[i]!;
      if (c === '\\') {
        text += src.slice(i, i + 2);
        i += 2;
        continue;
      }
      if (c === '`') {
        i++;
        push('template', text, at);
        return;
      }
      if (c === '$' && src[i + 1] === '{') {
        i += 2;
        braces.push('template');
        push('template', text, at);
        return;
      }
      if (c === '\n') line++;
      text += c;
      i++;
    }
    throw new Error(`unterminated template literal from line ${at}`);
  };

  while (i < src.length) {
    const c = src[i]!;
    if (c === '\n') {
      line++;
      i++;
    } else if (/\s/.test(c)) {
      i++;
    } else if (c === '/' && src[i + 1] === '/') {
      while (i < src.length && src[i] !== '\n') i++;
    } else if (c === '/' && src[i + 1] === '*') {
      const end = src.indexOf('*/', i + 2);
      if (end < 0) throw new Error(`unterminated comment at line ${line}`);
      for (const ch of src.slice(i, end)) if (ch === '\n') line++;
      i = end + 2;
    } else if (c === '"' || c === "'") {
      const at = line;
      let j = i + 1;
      let value = '';
      while (j < src.length && src[j] !== c) {
        if (src[j] === '\n') throw new Error(`unterminated string at line ${at}`);
        if (src[j] === '\\') {
          value += src.slice(j, j + 2);
          j += 2;
        } else value += src[j++];
      }
      i = j + 1;
      push('string', value, at);
    } else if (c === '`') {
      i++;
      templateSpan();
    } else if (c === '}' && braces[braces.length - 1] === 'template') {
      braces.pop();
      i++;
      templateSpan();
    } else if (c === '/' && regexAllowed()) {
      const at = line;
      let j = i + 1;
      let inClass = false;
      while (j < src.length) {
        const d = src[j]!;
        if (d === '\n') throw new Error(`unterminated regular expression at line ${at}`);
        if (d === '\\') j += 2;
        else {
          if (d === '[') inClass = true;
          else if (d === ']') inClass = false;
          else if (d === '/' && !inClass) break;
          j++;
        }
      }
      j++;
      while (j < src.length && isIdPart(src[j]!)) j++;
      push('regex', src.slice(i, j), at);
      i = j;
    } else if (isIdStart(c) || (c === '#' && i + 1 < src.length && isIdStart(src[i + 1]!))) {
      let j = i + 1;
      while (j < src.length && isIdPart(src[j]!)) j++;
      push(c === '#' ? 'private' : 'ident', src.slice(i, j), line);
      i = j;
    } else if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(src[i + 1] ?? ''))) {
      let j = i + 1;
      while (j < src.length && /[\w.]/.test(src[j]!)) j++;
      push('number', src.slice(i, j), line);
      i = j;
    } else if (c === '?' && src[i + 1] === '.' && !/[0-9]/.test(src[i + 2] ?? '')) {
      push('punct', '?.', line);
      i += 2;
    } else if (c === '.' && src.startsWith('...', i)) {
      push('punct', '...', line);
      i += 3;
    } else {
      if (c === '{') braces.push('brace');
      else if (c === '}') braces.pop();
      const before = tokens[tokens.length - 1];
      if (c === '(') parens.push(before?.kind === 'ident' && ['if', 'while', 'for', 'with'].includes(before.value));
      push('punct', c, line);
      if (c === ')' && parens.pop() === true) tokens[tokens.length - 1]!.control = true;
      i++;
    }
  }
  return tokens;
}

export interface Finding {
  /** What was found: "setTimeout", "Date.now", "new Date()", "import node:fs", "dynamic import()". */
  what: string;
  line: number;
}

const isPunct = (t: Token | undefined, value: string): boolean => t?.kind === 'punct' && t.value === value;
const isIdent = (t: Token | undefined, value: string): boolean => t?.kind === 'ident' && t.value === value;

/** The forbidden globals used in one module's source. */
export function findGlobals(src: string): Finding[] {
  const tokens = tokenize(src);
  const found: Finding[] = [];
  for (let k = 0; k < tokens.length; k++) {
    const t = tokens[k]!;
    if (t.kind !== 'ident') continue;
    const prev = tokens[k - 1];
    const next = tokens[k + 1];
    // A property (x.process, x?.setTimeout) is not the global, unless read off the global object.
    const member = isPunct(prev, '.') || isPunct(prev, '?.');
    if (member && !isIdent(tokens[k - 2], 'globalThis')) continue;
    // An object literal's key ({ process: 1 }) is not a use either.
    if ((isPunct(prev, '{') || isPunct(prev, ',')) && isPunct(next, ':')) continue;
    if (FORBIDDEN_GLOBALS.has(t.value)) found.push({ what: t.value, line: t.line });
    else if (t.value === 'Date') {
      if (isPunct(next, '.') && isIdent(tokens[k + 2], 'now')) found.push({ what: 'Date.now', line: t.line });
      else if (isIdent(prev, 'new') && (!isPunct(next, '(') || isPunct(tokens[k + 2], ')'))) found.push({ what: 'new Date()', line: t.line });
      else if (!isIdent(prev, 'new') && isPunct(next, '(')) found.push({ what: 'Date()', line: t.line });
    } else if (t.value === 'import' && isPunct(next, '(') && !member) {
      // Loads what the static walk cannot see.
      found.push({ what: 'dynamic import()', line: t.line });
    }
  }
  return found;
}

/** The module specifiers one module imports or re-exports statically, with their lines. */
export function staticImports(src: string): { spec: string; line: number }[] {
  const tokens = tokenize(src);
  const out: { spec: string; line: number }[] = [];
  for (let k = 0; k < tokens.length; k++) {
    const t = tokens[k]!;
    if (t.kind !== 'ident' || (t.value !== 'import' && t.value !== 'export')) continue;
    if (isPunct(tokens[k - 1], '.') || isPunct(tokens[k - 1], '?.')) continue; // import.meta, x.import
    const next = tokens[k + 1];
    if (t.value === 'import' && next?.kind === 'string') {
      out.push({ spec: next.value, line: next.line });
      continue;
    }
    if (t.value === 'import' && (isPunct(next, '(') || isPunct(next, '.'))) continue;
    if (t.value === 'export' && !isPunct(next, '{') && !isPunct(next, '*')) continue;
    // `import a, { b } from 'x'`, `export * as n from 'x'`, `export { a } from 'x'`: find `from` before the statement ends.
    for (let j = k + 1; j < tokens.length && !isPunct(tokens[j], ';'); j++) {
      if (isIdent(tokens[j], 'from') && tokens[j + 1]?.kind === 'string') {
        out.push({ spec: tokens[j + 1]!.value, line: tokens[j + 1]!.line });
        break;
      }
      if (tokens[j]!.kind === 'ident' && (tokens[j]!.value === 'import' || tokens[j]!.value === 'export') && !isPunct(tokens[j - 1], '.')) break;
    }
  }
  return out;
}

/** One finding somewhere in the graph, with the chain of modules that led there. */
export interface GraphFinding {
  what: string;
  file: string;
  line: number;
  via: string[];
}

/**
 * Walks `entry`'s static import graph (relative specifiers are followed, bare ones recorded)
 * and reports every forbidden module imported and every forbidden global used. `root` only
 * shortens the file names in the report.
 */
export function scanGraph(entry: string, root = path.dirname(entry)): { files: string[]; findings: GraphFinding[] } {
  const seen = new Set<string>();
  const findings: GraphFinding[] = [];
  const visit = (file: string, via: string[]): void => {
    seen.add(file);
    const name = path.relative(root, file);
    const src = readFileSync(file, 'utf8');
    for (const f of findGlobals(src)) findings.push({ what: f.what, file: name, line: f.line, via });
    for (const { spec, line } of staticImports(src)) {
      if (spec.startsWith('.')) {
        const next = path.resolve(path.dirname(file), spec);
        if (!seen.has(next)) visit(next, [...via, name]);
      } else if (FORBIDDEN_MODULES.test(spec)) findings.push({ what: `import ${spec}`, file: name, line, via });
    }
  };
  visit(path.resolve(entry), []);
  return { files: [...seen].map((f) => path.relative(root, f)), findings };
}

/** "setTimeout at binary/core.js:12 via binary/udp/face.js", one line per finding. */
export function describeFindings(findings: GraphFinding[]): string[] {
  return findings.map((f) => `${f.what} at ${f.file}:${f.line}${f.via.length > 0 ? ` via ${f.via.join(' -> ')}` : ''}`);
}
