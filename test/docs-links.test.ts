/**
 * The README is the product page and the manual lives in docs/: every relative link and image in
 * README.md, CHANGELOG.md and docs/*.md must resolve to a file in the repository, and every
 * #anchor to a heading of its page by GitHub's slug rules. The README stays short.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';

const ROOT = resolve(__dirname, '..');
const README_MAX_BYTES = 15 * 1024;

/** The Markdown files whose links are checked, relative to the repository root. */
function markdownFiles(): string[] {
  const docs = readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`);
  return ['README.md', 'CHANGELOG.md', ...docs];
}

/** The text without fenced code blocks and inline code spans (links there are examples, not links). */
export function withoutCode(md: string): string {
  const out: string[] = [];
  let fence: string | undefined;
  for (const line of md.split('\n')) {
    const m = /^ {0,3}(`{3,}|~{3,})/.exec(line);
    if (fence) {
      if (m && m[1][0] === fence[0] && m[1].length >= fence.length && line.trim() === m[1]) fence = undefined;
      out.push('');
      continue;
    }
    if (m) {
      fence = m[1];
      out.push('');
      continue;
    }
    out.push(line.replace(/(`+)[\s\S]*?\1/g, (s) => ' '.repeat(s.length)));
  }
  return out.join('\n');
}

/** Every link and image target in the text: inline, reference definitions and HTML src/href. */
export function linkTargets(md: string): string[] {
  const text = withoutCode(md);
  const targets: string[] = [];
  // [text](target "title") and ![alt](target); the text may hold one nested image.
  for (const m of text.matchAll(/!?\[(?:[^\][]|!\[[^\][]*\]\([^)]*\))*\]\(\s*(<[^>]*>|[^\s)]+)(?:\s+(?:"[^"]*"|'[^']*'|\([^)]*\)))?\s*\)/g)) {
    targets.push(m[1].replace(/^<|>$/g, ''));
  }
  for (const m of text.matchAll(/^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)/gm)) targets.push(m[1].replace(/^<|>$/g, ''));
  for (const m of text.matchAll(/<(?:img|a|source)\b[^>]*?\s(?:src|href|srcset)\s*=\s*["']([^"']+)["']/gi)) targets.push(m[1]);
  return targets;
}

/** GitHub's heading anchor (github-slugger): lower case, punctuation and symbols dropped, spaces to hyphens. */
export function githubSlug(heading: string): string {
  return heading.toLowerCase().replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '').replace(/ /g, '-');
}

/** The text of a heading as GitHub renders it: inline code and emphasis markers dropped, links to their text. */
function headingText(raw: string): string {
  return raw
    .replace(/\s+#+\s*$/, '')
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/`([^`]*)`/g, '$1')
    .replace(/<[^>]+>/g, '')
    .replace(/(\*\*|__|\*|~~)/g, '')
    .trim();
}

/** The anchors a page offers: one per heading (duplicates numbered as GitHub does), plus HTML ids and names. */
export function anchorsOf(md: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  const lines = withoutCode(md).split('\n');
  for (let i = 0; i < lines.length; i++) {
    const atx = /^ {0,3}#{1,6}\s+(.*)$/.exec(lines[i]);
    const setext = i + 1 < lines.length && lines[i].trim() && /^ {0,3}(=+|-+)\s*$/.test(lines[i + 1]) && !/^\s*[-*|]/.test(lines[i]) ? lines[i] : undefined;
    const raw = atx ? atx[1] : setext;
    if (raw === undefined) continue;
    const base = githubSlug(headingText(raw));
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  for (const m of md.matchAll(/<[a-z]+\b[^>]*?\s(?:id|name)\s*=\s*["']([^"']+)["']/gi)) anchors.add(m[1]);
  return anchors;
}

/** What is wrong with each relative link of `file` (a path relative to `root`); empty when all resolve. */
export function brokenLinks(root: string, file: string): string[] {
  const read = (p: string) => readFileSync(p, 'utf8');
  const problems: string[] = [];
  const abs = join(root, file);
  const md = read(abs);
  for (const target of linkTargets(md)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('//')) continue; // https:, mailto:, …
    const [pathPart, fragment] = target.split('#', 2) as [string, string | undefined];
    let path: string;
    try {
      path = decodeURIComponent(pathPart);
    } catch {
      problems.push(`${file}: ${target} is not a valid URL`);
      continue;
    }
    const dest = path === '' ? abs : path.startsWith('/') ? join(root, path) : resolve(dirname(abs), path);
    const shown = relative(root, dest) || '.';
    if (relative(root, dest).startsWith('..')) {
      problems.push(`${file}: ${target} points outside the repository`);
      continue;
    }
    if (!existsSync(dest)) {
      problems.push(`${file}: ${target} → ${shown} does not exist${/^docs\/images\/.*\.png$/.test(shown) ? ' (run "npm run test:e2e && npm run screenshots")' : ''}`);
      continue;
    }
    if (fragment === undefined || fragment === '') continue;
    if (statSync(dest).isDirectory() || !dest.endsWith('.md')) {
      problems.push(`${file}: ${target} has an #anchor, but ${shown} is not a Markdown page`);
      continue;
    }
    const anchors = anchorsOf(read(dest));
    const wanted = decodeURIComponent(fragment).toLowerCase();
    if (!anchors.has(wanted)) problems.push(`${file}: ${target} → no heading "#${wanted}" in ${shown}`);
  }
  return problems;
}

test('GitHub heading slugs', () => {
  const cases: Array<[string, string]> = [
    ['Which defaults hold up on real slides', 'which-defaults-hold-up-on-real-slides'],
    ['Configuration: `idc.config.json`', 'configuration-idcconfigjson'],
    ['evaluate, predict, report', 'evaluate-predict-report'],
    ["The defaults and the notebook's recipe", 'the-defaults-and-the-notebooks-recipe'],
    ['GPU benchmark (not run on a GPU yet)', 'gpu-benchmark-not-run-on-a-gpu-yet'],
    ['Earlier evidence: the 16-patient sample (2026-12-06), kept as history', 'earlier-evidence-the-16-patient-sample-2026-12-06-kept-as-history'],
    ['Stop / Resume', 'stop--resume'],
    ['snake_case and Ünïcode — too', 'snake_case-and-ünïcode--too'],
  ];
  for (const [heading, slug] of cases) assert.equal(githubSlug(headingText(heading)), slug, heading);
  const anchors = anchorsOf('# A\n\n## A\n\n```\n# not a heading\n```\n\n### **Bold** [link](x.md)\n\nSetext\n---\n');
  assert.deepEqual([...anchors], ['a', 'a-1', 'bold-link', 'setext']);
});

test('the link check finds missing files, missing anchors and ignores code and external links', () => {
  const dir = mkdtempSync(join(tmpdir(), 'idc-links-'));
  try {
    writeFileSync(join(dir, 'a.md'), '# Top\n[ok](b.md#sub) [self](#top) [bad](b.md#nope) [gone](c.md) ![img](i.png) `[code](x.md)` [web](https://x.invalid/y)\n```\n[fenced](z.md)\n```\n');
    writeFileSync(join(dir, 'b.md'), '# B\n## Sub\n');
    const problems = brokenLinks(dir, 'a.md');
    assert.equal(problems.length, 3, problems.join('\n'));
    assert.match(problems.join('\n'), /b\.md#nope → no heading "#nope"/);
    assert.match(problems.join('\n'), /c\.md → c\.md does not exist/);
    assert.match(problems.join('\n'), /i\.png → i\.png does not exist/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('every relative link and image in README.md, CHANGELOG.md and docs/*.md resolves', () => {
  const problems = markdownFiles().flatMap((f) => brokenLinks(ROOT, f));
  assert.deepEqual(problems, []);
});

test('the README stays a product page: under 15 KB, linking into docs/', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const bytes = Buffer.byteLength(readme);
  assert.ok(bytes <= README_MAX_BYTES, `README.md is ${bytes} bytes; keep it under ${README_MAX_BYTES} (the manual belongs in docs/)`);
  for (const page of ['docs/cli.md', 'docs/configuration.md', 'docs/evaluation.md', 'docs/real-data.md']) {
    assert.ok(linkTargets(readme).includes(page), `README.md does not link to ${page}`);
  }
});

test('the README shows each panel and the side bar from docs/images, as PNGs at most 800 px wide', async () => {
  const images = linkTargets(readFileSync(join(ROOT, 'README.md'), 'utf8')).filter((t) => /\.png$/i.test(t));
  for (const name of ['sidebar', 'dataset', 'training', 'threshold', 'gallery', 'slidemap']) {
    assert.ok(images.includes(`docs/images/${name}.png`), `README.md does not show docs/images/${name}.png`);
  }
  const sharp = (await import('sharp')).default;
  for (const image of images) {
    const file = join(ROOT, image);
    if (!existsSync(file)) continue; // reported by the link check, with the command that makes it
    const meta = await sharp(file).metadata();
    assert.equal(meta.format, 'png', `${image} is not a PNG`);
    assert.ok((meta.width ?? Infinity) <= 800, `${image} is ${meta.width} px wide (at most 800: run "npm run screenshots")`);
  }
});
