/**
 * Colour tables shared by the Grad-CAM overlay and the slide map. Viridis is perceptually uniform
 * and readable with the common colour-vision deficiencies; the outline colours are Okabe–Ito.
 */

// matplotlib viridis at 9 evenly spaced stops; linear interpolation between them stays within a
// few levels of the full 256-entry table.
const VIRIDIS_STOPS = [0x440154, 0x472d7b, 0x3b528b, 0x2c728e, 0x21918c, 0x28ae80, 0x5ec962, 0xaddc30, 0xfde725];

/** 256 × RGB viridis lookup table. */
export const VIRIDIS: Uint8Array = (() => {
  const lut = new Uint8Array(256 * 3);
  const last = VIRIDIS_STOPS.length - 1;
  for (let i = 0; i < 256; i++) {
    const pos = (i / 255) * last;
    const k = Math.min(last - 1, Math.floor(pos));
    const f = pos - k;
    const a = VIRIDIS_STOPS[k], b = VIRIDIS_STOPS[k + 1];
    for (let c = 0; c < 3; c++) {
      const sh = 16 - 8 * c;
      lut[i * 3 + c] = Math.round(((a >> sh) & 255) * (1 - f) + ((b >> sh) & 255) * f);
    }
  }
  return lut;
})();

/** LUT index for a value in [0, 1] (NaN → 0). */
export function lutIndex(v: number): number {
  return v > 0 ? (v < 1 ? Math.round(v * 255) : 255) : 0;
}

export type Rgb = readonly [number, number, number];
