import { constants, crc32, deflateSync } from 'node:zlib';

const SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);

/**
 * 8-bit RGB PNG from scanlines that already carry their filter byte.
 * Native zlib, not fast-png's encode (pure-JS fflate): measured per 50x50 patch, fast-png ~450 µs, this ~100 µs.
 * Huffman-only: the per-pixel noise leaves LZ77 nothing to match, so it is ~2x faster than the default
 * strategy at level 6 and the files come out no larger.
 */
export function encodeRgbPng(scanlines: Uint8Array, width: number, height: number): Buffer {
  const idat = deflateSync(scanlines, { level: 6, strategy: constants.Z_HUFFMAN_ONLY });
  const out = Buffer.allocUnsafe(8 + 25 + 12 + idat.length + 12);
  out.set(SIGNATURE, 0);
  let o = 8;
  o = chunkHeader(out, o, 13, 'IHDR');
  out.writeUInt32BE(width, o);
  out.writeUInt32BE(height, o + 4);
  out[o + 8] = 8; // bit depth
  out[o + 9] = 2; // colour type RGB
  out[o + 10] = 0;
  out[o + 11] = 0;
  out[o + 12] = 0;
  o = chunkEnd(out, o + 13, 13);
  o = chunkHeader(out, o, idat.length, 'IDAT');
  out.set(idat, o);
  o = chunkEnd(out, o + idat.length, idat.length);
  o = chunkHeader(out, o, 0, 'IEND');
  chunkEnd(out, o, 0);
  return out;
}

function chunkHeader(buf: Buffer, o: number, length: number, type: string): number {
  buf.writeUInt32BE(length, o);
  buf.write(type, o + 4, 'latin1');
  return o + 8;
}

/** Writes the CRC of type + data, which end at `o`. */
function chunkEnd(buf: Buffer, o: number, length: number): number {
  buf.writeUInt32BE(crc32(buf.subarray(o - length - 4, o)), o);
  return o + 4;
}
