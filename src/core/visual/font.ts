/**
 * A 5×7 bitmap font for legend labels: no system fonts needed (sharp's SVG text depends on
 * fontconfig and installed fonts, which vary by machine and add start-up time).
 */
const GLYPHS: Record<string, string> = {
  '0': '.###.#...##..###.#.###..##...#.###.', '1': '..#...##....#....#....#....#...###.',
  '2': '.###.#...#....#...#...#...#...#####', '3': '#####...#...#.....#.....##...#.###.',
  '4': '...#...##..#.#.#..#.#####...#....#.', '5': '######....####.....#....##...#.###.',
  '6': '..##..#...#....####.#...##...#.###.', '7': '#####....#...#...#...#....#....#...',
  '8': '.###.#...##...#.###.#...##...#.###.', '9': '.###.#...##...#.####....#...#..##..',
  '.': '..........................##...##..', '(': '...#...#...#....#....#.....#.....#.',
  ')': '.#.....#.....#....#....#...#...#...', '+': '.......#....#..#####..#....#.......',
  '=': '..........#####.....#####..........', '-': '...............#####...............',
  P: '####.#...##...#####.#....#....#....', I: '.###...#....#....#....#....#...###.',
  D: '###..#..#.#...##...##...##..#.###..', C: '.###.#...##....#....#....#...#.###.',
  F: '######....#....####.#....#....#....', N: '#...##...###..##.#.##..###...##...#',
  T: '#####..#....#....#....#....#....#..', R: '####.#...##...#####.#.#..#..#.#...#',
  U: '#...##...##...##...##...##...#.###.', E: '######....#....####.#....#....#####',
  H: '#...##...##...#######...##...##...#',
};

export const GLYPH_W = 5, GLYPH_H = 7;

/** Width in pixels of `text` at integer scale f (1 px gap between glyphs). */
export function textWidth(text: string, f: number): number {
  return text.length === 0 ? 0 : (text.length * (GLYPH_W + 1) - 1) * f;
}

/** Draws `text` into an RGB buffer of width `stride` with its top-left at (x, y); clips at the edges. */
export function drawText(rgb: Uint8Array, stride: number, height: number, text: string, x: number, y: number, f: number, colour: readonly number[]): void {
  for (let c = 0; c < text.length; c++) {
    const g = GLYPHS[text[c].toUpperCase()];
    if (!g) continue;
    const gx = x + c * (GLYPH_W + 1) * f;
    for (let r = 0; r < GLYPH_H; r++) {
      for (let k = 0; k < GLYPH_W; k++) {
        if (g[r * GLYPH_W + k] !== '#') continue;
        for (let dy = 0; dy < f; dy++) {
          const py = y + r * f + dy;
          if (py < 0 || py >= height) continue;
          for (let dx = 0; dx < f; dx++) {
            const px = gx + k * f + dx;
            if (px < 0 || px >= stride) continue;
            const d = (py * stride + px) * 3;
            rgb[d] = colour[0]; rgb[d + 1] = colour[1]; rgb[d + 2] = colour[2];
          }
        }
      }
    }
  }
}
