/**
 * Offsets of the values and keys in a JSON-with-comments text, so that a config problem's path
 * ("split.ratios[1]") can be shown on the text it is about. core/config.ts's parseJsonc gives
 * values and syntax errors; this only adds where things are, and gives up on broken text.
 */

export type JsonPath = (string | number)[];

export interface JsonNode {
  type: 'object' | 'array' | 'string' | 'number' | 'boolean' | 'null';
  offset: number;
  length: number;
  /** object only */
  properties?: JsonProperty[];
  /** array only */
  items?: JsonNode[];
}

export interface JsonProperty {
  key: string;
  keyOffset: number;
  keyLength: number;
  value: JsonNode;
}

export interface Span {
  offset: number;
  length: number;
}

class Broken extends Error {}

/** The tree of `text`, or undefined when it is not valid JSONC. */
export function parseTree(text: string): JsonNode | undefined {
  let pos = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const fail = (): never => { throw new Broken(); };
  const skip = (): void => {
    for (;;) {
      const c = text.charCodeAt(pos);
      if (c === 32 || c === 9 || c === 10 || c === 13) pos++;
      else if (c === 47 && text.charCodeAt(pos + 1) === 47) {
        while (pos < text.length && text.charCodeAt(pos) !== 10 && text.charCodeAt(pos) !== 13) pos++;
      } else if (c === 47 && text.charCodeAt(pos + 1) === 42) {
        const end = text.indexOf('*/', pos + 2);
        if (end < 0) fail();
        pos = end + 2;
      } else return;
    }
  };
  const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
  const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  const LITERAL = /true|false|null/y;
  const token = (re: RegExp): string => {
    re.lastIndex = pos;
    const m = re.exec(text);
    if (!m) fail();
    pos += m![0].length;
    return m![0];
  };

  const value = (): JsonNode => {
    skip();
    const start = pos;
    const c = text[pos];
    if (c === '{') {
      pos++;
      const properties: JsonProperty[] = [];
      skip();
      while (text[pos] !== '}') {
        if (text[pos] !== '"') fail();
        const keyOffset = pos;
        const raw = token(STRING);
        skip();
        if (text[pos++] !== ':') fail();
        properties.push({ key: JSON.parse(raw) as string, keyOffset, keyLength: raw.length, value: value() });
        skip();
        if (text[pos] === ',') { pos++; skip(); } else if (text[pos] !== '}') fail();
      }
      pos++;
      return { type: 'object', offset: start, length: pos - start, properties };
    }
    if (c === '[') {
      pos++;
      const items: JsonNode[] = [];
      skip();
      while (text[pos] !== ']') {
        items.push(value());
        skip();
        if (text[pos] === ',') { pos++; skip(); } else if (text[pos] !== ']') fail();
      }
      pos++;
      return { type: 'array', offset: start, length: pos - start, items };
    }
    if (c === '"') return { type: 'string', offset: start, length: token(STRING).length };
    if (c === '-' || (c >= '0' && c <= '9')) return { type: 'number', offset: start, length: token(NUMBER).length };
    const lit = token(LITERAL);
    return { type: lit === 'null' ? 'null' : 'boolean', offset: start, length: lit.length };
  };

  try {
    const root = value();
    skip();
    return pos === text.length ? root : undefined;
  } catch (e) {
    if (e instanceof Broken) return undefined;
    throw e;
  }
}

/** "split.ratios[1]" -> ['split', 'ratios', 1]; quoted keys as config.ts writes them ('a."b c"'); "(root)" -> []. */
export function parsePath(path: string): JsonPath {
  if (path === '(root)' || path === '') return [];
  const out: JsonPath = [];
  let i = 0;
  while (i < path.length) {
    const c = path[i];
    if (c === '.') { i++; continue; }
    if (c === '[') {
      const end = path.indexOf(']', i);
      if (end < 0) break;
      out.push(Number(path.slice(i + 1, end)));
      i = end + 1;
    } else if (c === '"') {
      const m = /^"(?:[^"\\]|\\.)*"/.exec(path.slice(i));
      if (!m) break;
      out.push(JSON.parse(m[0]) as string);
      i += m[0].length;
    } else {
      const m = /^[^.[]+/.exec(path.slice(i))!;
      out.push(m[0]);
      i += m[0].length;
    }
  }
  return out;
}

export interface Located {
  /** The value at the path, when all of it exists. */
  value?: JsonNode;
  /** The property holding it, when its last step is an object key. */
  property?: JsonProperty;
  /** Steps of the path that exist. */
  depth: number;
  /** The deepest node found (the root when nothing matched). */
  nearest: JsonNode;
  /** The key of `nearest`, when it is a property's value. */
  nearestProperty?: JsonProperty;
}

/** Walks `path` down `root` as far as it exists. */
export function locate(root: JsonNode, path: JsonPath): Located {
  let node = root;
  let property: JsonProperty | undefined;
  for (let i = 0; i < path.length; i++) {
    const step = path[i];
    let next: JsonNode | undefined;
    let nextProperty: JsonProperty | undefined;
    if (node.type === 'object' && typeof step === 'string') {
      // The last duplicate wins in JSON.parse; parseJsonc refuses duplicates anyway.
      nextProperty = node.properties!.filter((p) => p.key === step).pop();
      next = nextProperty?.value;
    } else if (node.type === 'array' && typeof step === 'number') next = node.items![step];
    if (!next) return { depth: i, nearest: node, nearestProperty: property };
    node = next;
    property = nextProperty;
  }
  return { value: node, property, depth: path.length, nearest: node, nearestProperty: property };
}

/**
 * Where to underline a problem at `path`: the value, or the key for an unknown setting (the key is
 * what is wrong); the nearest existing ancestor's key (else the whole root) when the path is missing.
 */
export function problemSpan(root: JsonNode, path: JsonPath, target: 'key' | 'value'): { span: Span; exact: boolean } {
  // The whole document: its opening brace, not every line.
  if (path.length === 0) return { span: { offset: root.offset, length: root.type === 'object' || root.type === 'array' ? 1 : root.length }, exact: true };
  const l = locate(root, path);
  if (l.value) {
    if (target === 'key' && l.property) return { span: { offset: l.property.keyOffset, length: l.property.keyLength }, exact: true };
    return { span: { offset: l.value.offset, length: l.value.length }, exact: true };
  }
  if (l.nearestProperty) return { span: { offset: l.nearestProperty.keyOffset, length: l.nearestProperty.keyLength }, exact: false };
  // The root object: its opening brace, not the whole file.
  return { span: { offset: l.nearest.offset, length: l.nearest.type === 'object' || l.nearest.type === 'array' ? 1 : l.nearest.length }, exact: false };
}

/** The token at a syntax error's offset (a word, a string start, or one character). */
export function tokenSpanAt(text: string, offset: number): Span {
  if (offset >= text.length) return { offset: text.length, length: 0 };
  const m = /^(?:[\w$.+-]+|.)/s.exec(text.slice(offset, offset + 64));
  const len = m ? m[0].length : 1;
  return { offset, length: text[offset] === '\n' || text[offset] === '\r' ? 0 : len };
}

export interface Edit {
  offset: number;
  length: number;
  newText: string;
}

/**
 * The smallest edit that sets `path` to `value` in JSONC `text`, keeping comments and layout:
 * replaces an existing value, else adds the missing properties to the deepest existing object.
 * Throws when the text is not valid JSONC or a step crosses a non-object.
 */
export function setValueEdit(text: string, path: JsonPath, value: unknown): Edit {
  if (text.trim() === '') return { offset: 0, length: text.length, newText: `${nested(path, value, '')}\n` };
  const root = parseTree(text);
  if (!root) throw new Error('The file is not valid JSON; fix its syntax first.');
  const l = locate(root, path);
  if (l.value) return { offset: l.value.offset, length: l.value.length, newText: JSON.stringify(value) };
  const parent = l.nearest;
  if (parent.type !== 'object' || typeof path[l.depth] !== 'string') throw new Error(`Cannot add ${path.join('.')}: ${path.slice(0, l.depth).join('.') || 'the file'} is not an object.`);
  const rest = path.slice(l.depth) as string[];
  const props = parent.properties!;
  const parentIndent = lineIndent(text, parent.offset);
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  if (props.length === 0) {
    // "{}" or "{ /* comment */ }": open it up.
    const indent = parentIndent + '  ';
    return { offset: parent.offset + 1, length: 0, newText: `${eol}${indent}${propertyText(rest, value, indent)}${eol}${parentIndent}` };
  }
  const last = props[props.length - 1];
  const indent = lineIndent(text, last.keyOffset);
  const after = last.value.offset + last.value.length;
  const trailingComma = /^(?:\s|\/\/[^\n]*\n|\/\*[\s\S]*?\*\/)*,/.exec(text.slice(after));
  if (trailingComma) {
    const at = after + trailingComma[0].length;
    return { offset: at, length: 0, newText: `${eol}${indent}${propertyText(rest, value, indent)},` };
  }
  return { offset: after, length: 0, newText: `,${eol}${indent}${propertyText(rest, value, indent)}` };
}

function propertyText(path: string[], value: unknown, indent: string): string {
  return `${JSON.stringify(path[0])}: ${path.length > 1 ? nested(path.slice(1), value, indent) : JSON.stringify(value)}`;
}

function nested(path: JsonPath, value: unknown, indent: string): string {
  if (path.length === 0) return JSON.stringify(value);
  const inner = indent + '  ';
  return `{\n${inner}${JSON.stringify(String(path[0]))}: ${nested(path.slice(1), value, inner)}\n${indent}}`;
}

function lineIndent(text: string, offset: number): string {
  const lineStart = text.lastIndexOf('\n', offset - 1) + 1;
  return /^[ \t]*/.exec(text.slice(lineStart))![0];
}

/** Offset -> 0-based line and UTF-16 character, as LSP positions count. */
export function lineIndex(text: string): (offset: number) => { line: number; character: number } {
  const starts = [0];
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) starts.push(i + 1);
  return (offset) => {
    let lo = 0, hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid] <= offset) lo = mid; else hi = mid - 1;
    }
    return { line: lo, character: offset - starts[lo] };
  };
}
