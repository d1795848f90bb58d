/**
 * Just enough XML for bank files: escaping for what we write, and a strict reader for what banks
 * send (pain.002, camt.054). The reader takes elements, attributes, text, comments, CDATA and the
 * five predefined entities plus character references; it refuses a DTD (no entity expansion, so
 * no "billion laughs") and anything malformed, naming the line. Namespace prefixes are dropped:
 * the message type is told by the root's namespace, checked by the caller.
 */
export class XmlError extends Error {
  constructor(
    readonly line: number,
    readonly rule: string,
  ) {
    super(`line ${line}: ${rule}`);
    this.name = 'XmlError';
  }
}

export interface XmlElement {
  /** Local name (prefix removed). */
  name: string;
  attributes: Record<string, string>;
  children: XmlElement[];
  /** Concatenated text directly inside the element, trimmed. */
  text: string;
  /** 1-based line of the start tag. */
  line: number;
}

/** Bank files are small; anything larger is refused before parsing. */
export const xml_bytes_max = 32 * 1024 * 1024;
const depth_max = 64;

export function escape_xml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) =>
    c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '&' ? '&amp;' : c === "'" ? '&apos;' : '&quot;',
  );
}

const name_pattern = /^[A-Za-z_][A-Za-z0-9_.:-]*/;

function decode_entities(text: string, line: number): string {
  return text.replace(/&([^;]{0,10});/g, (_, ref: string) => {
    if (ref === 'lt') return '<';
    if (ref === 'gt') return '>';
    if (ref === 'amp') return '&';
    if (ref === 'apos') return "'";
    if (ref === 'quot') return '"';
    const code = /^#x[0-9a-fA-F]{1,6}$/.test(ref)
      ? Number.parseInt(ref.slice(2), 16)
      : /^#\d{1,7}$/.test(ref)
        ? Number(ref.slice(1))
        : -1;
    if (code < 0 || code > 0x10ffff) throw new XmlError(line, `unknown entity &${ref};`);
    return String.fromCodePoint(code);
  });
}

function local_name(name: string): string {
  const colon = name.indexOf(':');
  return colon < 0 ? name : name.slice(colon + 1);
}

export function parse_xml(source: string): XmlElement {
  if (source.length > xml_bytes_max) throw new XmlError(1, `file is over ${xml_bytes_max} bytes`);
  let pos = 0;
  let line = 1;
  const advance = (to: number) => {
    for (let i = pos; i < to; i++) if (source.charCodeAt(i) === 10) line++;
    pos = to;
  };
  const stack: XmlElement[] = [];
  const texts: string[][] = [];
  let root: XmlElement | undefined;
  if (source.charCodeAt(0) === 0xfeff) pos = 1;
  while (pos < source.length) {
    const lt = source.indexOf('<', pos);
    const text_end = lt < 0 ? source.length : lt;
    if (text_end > pos) {
      const raw = source.slice(pos, text_end);
      if (stack.length === 0) {
        if (raw.trim() !== '') throw new XmlError(line, 'text outside the root element');
      } else texts[texts.length - 1]!.push(decode_entities(raw, line));
      advance(text_end);
    }
    if (lt < 0) break;
    if (source.startsWith('<?', pos)) {
      const end = source.indexOf('?>', pos);
      if (end < 0) throw new XmlError(line, 'unterminated processing instruction');
      if (!source.startsWith('<?xml', pos) || root !== undefined || stack.length > 0) {
        throw new XmlError(line, 'processing instructions are not accepted');
      }
      advance(end + 2);
    } else if (source.startsWith('<!--', pos)) {
      const end = source.indexOf('-->', pos);
      if (end < 0) throw new XmlError(line, 'unterminated comment');
      advance(end + 3);
    } else if (source.startsWith('<![CDATA[', pos)) {
      const end = source.indexOf(']]>', pos);
      if (end < 0) throw new XmlError(line, 'unterminated CDATA section');
      if (stack.length === 0) throw new XmlError(line, 'CDATA outside the root element');
      texts[texts.length - 1]!.push(source.slice(pos + 9, end));
      advance(end + 3);
    } else if (source.startsWith('<!', pos)) {
      throw new XmlError(line, 'a DTD or declaration is not accepted');
    } else if (source.startsWith('</', pos)) {
      const end = source.indexOf('>', pos);
      if (end < 0) throw new XmlError(line, 'unterminated end tag');
      const name = source.slice(pos + 2, end).trim();
      const open = stack.pop();
      if (open === undefined || local_name(name) !== open.name) {
        throw new XmlError(line, `end tag </${name}> does not close ${open ? `<${open.name}>` : 'anything'}`);
      }
      open.text = texts.pop()!.join('').trim();
      advance(end + 1);
    } else {
      const start_line = line;
      const rest = source.slice(pos + 1);
      const name = name_pattern.exec(rest)?.[0];
      if (name === undefined) throw new XmlError(line, 'a tag must start with a name');
      let cursor = pos + 1 + name.length;
      const attributes: Record<string, string> = {};
      for (;;) {
        const ws = /^\s*/.exec(source.slice(cursor, cursor + 1000))![0].length;
        cursor += ws;
        const ch = source[cursor];
        if (ch === '>' || (ch === '/' && source[cursor + 1] === '>')) break;
        if (ch === undefined) throw new XmlError(start_line, `unterminated tag <${name}>`);
        if (ws === 0) throw new XmlError(start_line, `<${name}>: attributes need white space between them`);
        const attr = /^([A-Za-z_][A-Za-z0-9_.:-]*)\s*=\s*("([^"<]*)"|'([^'<]*)')/.exec(
          source.slice(cursor, cursor + 10_000),
        );
        if (attr === null) throw new XmlError(start_line, `<${name}>: a malformed attribute`);
        const key = attr[1]!;
        if (key in attributes) throw new XmlError(start_line, `<${name}>: attribute ${key} given twice`);
        attributes[key] = decode_entities(attr[3] ?? attr[4] ?? '', start_line);
        cursor += attr[0].length;
      }
      const self_closing = source[cursor] === '/';
      const element: XmlElement = {
        name: local_name(name),
        attributes,
        children: [],
        text: '',
        line: start_line,
      };
      if (stack.length === 0) {
        if (root !== undefined) throw new XmlError(start_line, 'a second root element');
        root = element;
      } else stack[stack.length - 1]!.children.push(element);
      if (!self_closing) {
        if (stack.length >= depth_max) throw new XmlError(start_line, `nested deeper than ${depth_max}`);
        stack.push(element);
        texts.push([]);
      }
      advance(cursor + (self_closing ? 2 : 1));
    }
  }
  if (stack.length > 0) throw new XmlError(line, `<${stack[stack.length - 1]!.name}> is not closed`);
  if (root === undefined) throw new XmlError(line, 'no root element');
  return root;
}

/** The first child with this local name. */
export function child(element: XmlElement | undefined, name: string): XmlElement | undefined {
  return element?.children.find((c) => c.name === name);
}

/** The element at a path of local names (`Refs/EndToEndId`), or undefined. */
export function at(element: XmlElement | undefined, path: string): XmlElement | undefined {
  let current = element;
  for (const name of path.split('/')) current = child(current, name);
  return current;
}

export function all(element: XmlElement | undefined, name: string): XmlElement[] {
  return element?.children.filter((c) => c.name === name) ?? [];
}
