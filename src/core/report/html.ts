/** HTML building blocks: an auto-escaping template tag and number formatting. */

/** Markup that is already safe; anything else interpolated into `html` is escaped. */
export class Html {
  constructor(readonly value: string) {}
  toString(): string { return this.value; }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for element content and quoted attributes; control characters become U+FFFD. */
export function escapeHtml(text: unknown): string {
  return String(text)
    .replace(/[&<>"']/g, (c) => ESCAPES[c])
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/g, '\uFFFD');
}

/** Trusted markup (only for text built here, never for input). */
export const raw = (s: string): Html => new Html(s);

function part(v: unknown): string {
  if (v instanceof Html) return v.value;
  if (Array.isArray(v)) return v.map(part).join('');
  if (v === null || v === undefined || v === false) return '';
  return escapeHtml(v);
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += part(values[i]) + strings[i + 1];
  return new Html(out);
}

export const DASH = '—';

export const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

/** Fixed decimals; null, NaN and infinities read as a dash. */
export function fixed(x: number | null | undefined, digits = 3): string {
  if (!isNum(x)) return DASH;
  const s = x.toFixed(digits);
  return /^-0\.?0*$/.test(s) ? s.slice(1) : s;
}

export function int(x: number | null | undefined): string {
  return isNum(x) ? Math.round(x).toLocaleString('en-US') : DASH;
}

export function pct(x: number | null | undefined, digits = 1): string {
  return isNum(x) ? `${fixed(x * 100, digits)}%` : DASH;
}

/** Thresholds need more digits than metrics, and tiny ones (recall targets) an exponent. */
export function thresholdText(x: number | null | undefined): string {
  if (!isNum(x)) return DASH;
  return x !== 0 && Math.abs(x) < 1e-3 ? x.toExponential(2) : fixed(x, 4);
}

/** Learning rates: 0.001 → 1.0e-3. */
export function sci(x: number | null | undefined, digits = 1): string {
  if (!isNum(x)) return DASH;
  if (x === 0) return '0';
  return x.toExponential(digits).replace('e+', 'e');
}

/** Short general-purpose number: integers grouped, others to 3 significant digits. */
export function short(x: number | null | undefined): string {
  if (!isNum(x)) return DASH;
  if (Number.isInteger(x)) return int(x);
  const a = Math.abs(x);
  if (a >= 1000) return int(x);
  if (a >= 1e-3) return String(Number(x.toPrecision(3)));
  return sci(x, 1);
}

export function seconds(x: number | null | undefined): string {
  if (!isNum(x)) return DASH;
  if (x < 60) return `${fixed(x, x < 10 ? 1 : 0)} s`;
  const m = Math.floor(x / 60), s = Math.round(x % 60);
  if (m < 60) return `${m} min ${s} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** ISO time as "2025-01-02 03:04 UTC"; anything unparseable is shown as given. */
export function timeText(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** data: URI for PNG (or JPEG/WebP) bytes; undefined when the bytes are none of those. */
export function imageDataUri(bytes: Uint8Array | undefined): string | undefined {
  if (!bytes || bytes.byteLength < 12) return undefined;
  const b = bytes;
  let mime: string | undefined;
  if (b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47 && b[4] === 0x0d && b[5] === 0x0a && b[6] === 0x1a && b[7] === 0x0a) mime = 'image/png';
  else if (b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) mime = 'image/jpeg';
  else if (b[0] === 0x52 && b[1] === 0x49 && b[2] === 0x46 && b[3] === 0x46 && b[8] === 0x57 && b[9] === 0x45 && b[10] === 0x42 && b[11] === 0x50) mime = 'image/webp';
  if (!mime) return undefined;
  return `data:${mime};base64,${Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64')}`;
}
