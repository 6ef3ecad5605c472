// Draws media/icon.png (128x128): a stylised H&E patch with nuclei, in SVG rendered by sharp.
import sharp from 'sharp';
const nuclei = [[40, 44, 10], [78, 38, 8], [58, 70, 12], [92, 80, 9], [36, 90, 7], [70, 102, 8]];
const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="128" height="128">
  <rect x="4" y="4" width="120" height="120" rx="22" fill="#f3c6d8"/>
  <path d="M10 60 C40 40 70 80 118 50" stroke="#e79fbf" stroke-width="9" fill="none"/>
  <path d="M10 100 C50 80 80 115 118 92" stroke="#e79fbf" stroke-width="7" fill="none"/>
  ${nuclei.map(([x, y, r]) => `<ellipse cx="${x}" cy="${y}" rx="${r}" ry="${r * 0.8}" fill="#5b3a8c"/>`).join('')}
  <circle cx="58" cy="70" r="26" fill="none" stroke="#d55e00" stroke-width="5"/>
</svg>`;
await sharp(Buffer.from(svg)).png().toFile('media/icon.png');
