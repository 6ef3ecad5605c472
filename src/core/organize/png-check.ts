import { crc32 } from 'node:zlib';

/** What organize needs to know about a patch file without decoding its pixels. */
export interface PngInfo {
  width: number;
  height: number;
  bitDepth: number;
  colorType: number;
  /** CRC-32 over every chunk's CRC: with the size, identifies identical duplicate copies without a second pass. */
  crc: number;
  size: number;
  /** Set when the file is usable but unusual (e.g. RGBA); shown as "suspicious". */
  warning?: string;
}

export type PngCheck = { ok: true; info: PngInfo } | { ok: false; reason: string };

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const COLOR_TYPES: Record<number, string> = { 0: 'greyscale', 2: 'RGB', 3: 'palette', 4: 'grey+alpha', 6: 'RGBA' };

/**
 * Structural PNG check: signature, IHDR, every chunk's length and CRC, IEND at the end.
 * Catches empty, truncated and bit-flipped files at a fraction of a decode's cost.
 */
export function checkPng(buf: Uint8Array, maxSide = 50): PngCheck {
  const n = buf.length;
  if (n === 0) return { ok: false, reason: 'empty file (0 bytes)' };
  for (let i = 0; i < 8; i++) {
    if (i >= n || buf[i] !== SIGNATURE[i]) return { ok: false, reason: 'not a PNG file (wrong signature)' };
  }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = 8;
  let width = 0, height = 0, bitDepth = 0, colorType = -1;
  let sawIdat = false;
  let sawIend = false;
  let first = true;
  let contentCrc = 0;
  while (pos < n) {
    if (pos + 12 > n) return { ok: false, reason: `truncated PNG (incomplete chunk header at byte ${pos} of ${n})` };
    const len = view.getUint32(pos);
    const type = String.fromCharCode(buf[pos + 4], buf[pos + 5], buf[pos + 6], buf[pos + 7]);
    if (!/^[A-Za-z]{4}$/.test(type)) return { ok: false, reason: `corrupt PNG (invalid chunk type at byte ${pos})` };
    const end = pos + 12 + len;
    if (end > n) return { ok: false, reason: `truncated PNG (${type} chunk at byte ${pos} needs ${end} bytes, file has ${n})` };
    const crc = view.getUint32(end - 4);
    if (crc32(buf.subarray(pos + 4, end - 4)) !== crc) return { ok: false, reason: `corrupt PNG (CRC mismatch in ${type} chunk at byte ${pos})` };
    contentCrc = crc32(buf.subarray(end - 4, end), contentCrc);
    if (first) {
      if (type !== 'IHDR' || len !== 13) return { ok: false, reason: 'corrupt PNG (first chunk is not IHDR)' };
      width = view.getUint32(pos + 8);
      height = view.getUint32(pos + 12);
      bitDepth = buf[pos + 16];
      colorType = buf[pos + 17];
      first = false;
    } else if (type === 'IDAT') sawIdat = true;
    pos = end;
    if (type === 'IEND') { sawIend = true; break; }
  }
  if (first) return { ok: false, reason: 'truncated PNG (no IHDR chunk)' };
  if (!sawIend) return { ok: false, reason: `truncated PNG (no IEND chunk; file ends at byte ${n})` };
  if (!sawIdat) return { ok: false, reason: 'corrupt PNG (no image data)' };
  if (width === 0 || height === 0) return { ok: false, reason: `invalid PNG size ${width}x${height}` };
  if (width > maxSide || height > maxSide) return { ok: false, reason: `unexpected size ${width}x${height} (patches are at most ${maxSide}x${maxSide})` };
  if (!(colorType in COLOR_TYPES)) return { ok: false, reason: `corrupt PNG (unknown colour type ${colorType})` };
  const info: PngInfo = { width, height, bitDepth, colorType, crc: contentCrc, size: n };
  const warnings: string[] = [];
  if (colorType !== 2 || bitDepth !== 8) warnings.push(`${bitDepth}-bit ${COLOR_TYPES[colorType]} instead of 8-bit RGB (converted when decoded)`);
  if (pos < n) warnings.push(`${n - pos} bytes after the IEND chunk`);
  if (width < maxSide || height < maxSide) warnings.push(`edge patch ${width}x${height}`);
  if (warnings.length) info.warning = warnings.join('; ');
  return { ok: true, info };
}
