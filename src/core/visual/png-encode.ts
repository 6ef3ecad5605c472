import { encode } from 'fast-png';

type Sharp = typeof import('sharp').default;
let sharpModule: Promise<Sharp | undefined> | undefined;

/**
 * sharp when it is installed (the CLI, the tests), else fast-png: a .vsix carries no native
 * modules (vsce --no-dependencies), and the extension must still draw slide maps and overlays.
 */
function loadSharp(): Promise<Sharp | undefined> {
  sharpModule ??= import('sharp').then((m) => m.default, () => undefined);
  return sharpModule;
}

/** PNG of a raw 8-bit RGB image. */
export async function encodeRgbPng(rgb: Uint8Array, width: number, height: number, compressionLevel = 6): Promise<Buffer> {
  const sharp = await loadSharp();
  if (sharp) return sharp(rgb, { raw: { width, height, channels: 3 } }).png({ compressionLevel }).toBuffer();
  return encodeRgbPngPure(rgb, width, height, compressionLevel);
}

/** The fallback on its own (pure JS). */
export function encodeRgbPngPure(rgb: Uint8Array, width: number, height: number, compressionLevel = 6): Buffer {
  return Buffer.from(encode({ width, height, data: rgb, channels: 3, depth: 8 }, { zlib: { level: compressionLevel as 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 } }));
}

/** Nearest-neighbour resize of a raw RGB image (patches upscaled for display stay crisp). */
export function resizeNearest(rgb: Uint8Array, width: number, height: number, outWidth: number, outHeight: number): Uint8Array {
  const out = new Uint8Array(outWidth * outHeight * 3);
  for (let y = 0; y < outHeight; y++) {
    const sy = Math.min(height - 1, Math.floor((y * height) / outHeight));
    for (let x = 0; x < outWidth; x++) {
      const sx = Math.min(width - 1, Math.floor((x * width) / outWidth));
      const s = (sy * width + sx) * 3, d = (y * outWidth + x) * 3;
      out[d] = rgb[s]; out[d + 1] = rgb[s + 1]; out[d + 2] = rgb[s + 2];
    }
  }
  return out;
}
