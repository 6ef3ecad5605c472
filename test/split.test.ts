import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile, rm, readFile, access } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ManifestRow } from '../src/core/manifest';
import type { Label } from '../src/core/naming';
import { Rng } from '../src/core/rng';
import { isIdcError } from '../src/core/errors';
import {
  SPLIT_NAMES, assignRows, checkNoOverlap, formatSplitSummary, readSplit, splitByPatient, writeSplit,
  type SplitFile, type SplitName,
} from '../src/core/split';

/** Manifest rows for patients of the given sizes and positive fractions. */
function rowsFor(patients: { id: string; patches: number; positiveFraction: number }[]): ManifestRow[] {
  const rows: ManifestRow[] = [];
  for (const p of patients) {
    const positives = Math.round(p.patches * p.positiveFraction);
    for (let k = 0; k < p.patches; k++) {
      const label = (k < positives ? 1 : 0) as Label;
      const id = `${p.id}_idx5_x${k * 50}_y0_class${label}`;
      rows.push({ id, patient: p.id, x: k * 50, y: 0, label, width: 50, height: 50, source: `${p.id}/${label}/${id}.png` });
    }
  }
  return rows;
}

/** Like the real archive: 279 patients, lognormal sizes (mean ~ meanPatches), skewed positive fractions. */
function realisticRows(seed: number, n = 279, meanPatches = 300): ManifestRow[] {
  const rng = new Rng(seed);
  const patients = [];
  for (let i = 0; i < n; i++) {
    patients.push({
      id: String(8863 + i * 13),
      patches: Math.max(5, Math.round(meanPatches * 0.84 * Math.exp(rng.normal(0, 0.6)))),
      positiveFraction: 1 / (1 + Math.exp(-rng.normal(-1.1, 1.2))),
    });
  }
  return rowsFor(patients);
}

const OPTS = { ratios: [0.7, 0.15, 0.15] as [number, number, number], seed: 42, stratify: true, manifestHash: 'abc123' };
const ROWS = realisticRows(1);
const ALL_PATIENTS = new Set(ROWS.map((r) => r.patient));

function shares(split: SplitFile): Record<SplitName, number> {
  const total = SPLIT_NAMES.reduce((s, n) => s + split.summary[n].patches, 0);
  return { train: split.summary.train.patches / total, val: split.summary.val.patches / total, test: split.summary.test.patches / total };
}

/** Largest gap between a split's positive rate and the overall one. */
function rateGap(split: SplitFile): number {
  const all = SPLIT_NAMES.reduce((a, n) => ({ p: a.p + split.summary[n].positives, t: a.t + split.summary[n].patches }), { p: 0, t: 0 });
  return Math.max(...SPLIT_NAMES.filter((n) => split.summary[n].patches > 0).map((n) => Math.abs(split.summary[n].positiveRate - all.p / all.t)));
}

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'idc-split-'));
}

function rejectsWithCode(code: string) {
  return (e: unknown) => {
    assert.ok(isIdcError(e), String(e));
    assert.equal(e.code, code, e.message);
    return true;
  };
}

describe('splitByPatient', () => {
  test('is deterministic, whatever the row order', () => {
    const a = splitByPatient(ROWS, OPTS);
    const b = splitByPatient(ROWS, OPTS);
    const shuffled = new Rng(9).shuffle(ROWS.slice());
    const c = splitByPatient(shuffled, OPTS);
    assert.deepEqual(b.patients, a.patients);
    assert.deepEqual(c.patients, a.patients);
    assert.deepEqual(c.summary, a.summary);
  });

  test('records its inputs', () => {
    const s = splitByPatient(ROWS, OPTS);
    assert.equal(s.version, 1);
    assert.equal(s.seed, 42);
    assert.deepEqual(s.ratios, [0.7, 0.15, 0.15]);
    assert.equal(s.stratify, true);
    assert.equal(s.manifestHash, 'abc123');
    assert.ok(!Number.isNaN(Date.parse(s.createdAt)));
  });

  test('different seeds give different splits', () => {
    for (const stratify of [true, false]) {
      const a = splitByPatient(ROWS, { ...OPTS, stratify, seed: 1 });
      const b = splitByPatient(ROWS, { ...OPTS, stratify, seed: 2 });
      assert.notDeepEqual(a.patients.test, b.patients.test);
      const inA = new Set(a.patients.test);
      const same = b.patients.test.filter((id) => inA.has(id)).length;
      assert.ok(same < b.patients.test.length / 2, `seeds 1 and 2 share ${same} of ${b.patients.test.length} test patients`);
    }
  });

  test('every patient is in exactly one split and summaries match the rows', () => {
    for (const stratify of [true, false]) {
      const s = splitByPatient(ROWS, { ...OPTS, stratify });
      checkNoOverlap(s);
      const listed = SPLIT_NAMES.flatMap((n) => s.patients[n]);
      assert.equal(listed.length, ALL_PATIENTS.size);
      assert.deepEqual(new Set(listed), ALL_PATIENTS);
      const byName = assignRows(ROWS, s);
      for (const n of SPLIT_NAMES) {
        const rows = byName[n];
        const positives = rows.filter((r) => r.label === 1).length;
        assert.deepEqual(s.summary[n], { patients: s.patients[n].length, patches: rows.length, positives, positiveRate: positives / rows.length });
        assert.deepEqual(s.patients[n], [...s.patients[n]].sort((x, y) => Number(x) - Number(y)), 'ids listed in numeric order');
      }
    }
  });

  test('patch shares stay within 1 point of the ratios on a realistic manifest', () => {
    for (const ratios of [[0.7, 0.15, 0.15], [0.8, 0.1, 0.1], [0.6, 0.2, 0.2]] as [number, number, number][]) {
      for (let seed = 0; seed < 10; seed++) {
        for (const stratify of [true, false]) {
          const got = shares(splitByPatient(ROWS, { ...OPTS, ratios, seed, stratify }));
          SPLIT_NAMES.forEach((n, j) => assert.ok(Math.abs(got[n] - ratios[j]) < 0.01, `${n}: ${got[n]} vs ${ratios[j]} (seed ${seed}, stratify ${stratify})`));
        }
      }
    }
  });

  test('stratified positive rates track the overall rate better than unstratified ones', () => {
    let stratified = 0;
    let plain = 0;
    const seeds = 20;
    for (let seed = 0; seed < seeds; seed++) {
      stratified += rateGap(splitByPatient(ROWS, { ...OPTS, seed, stratify: true }));
      plain += rateGap(splitByPatient(ROWS, { ...OPTS, seed, stratify: false }));
    }
    assert.ok(stratified < plain / 2, `mean gap stratified ${stratified / seeds}, unstratified ${plain / seeds}`);
    assert.ok(stratified / seeds < 0.015, `mean stratified gap ${stratified / seeds}`);
  });

  test('big patients are not all pushed into train (no patient-size bias across splits)', () => {
    const seeds = 10;
    for (const n of ['val', 'test'] as const) {
      let sum = 0;
      for (let seed = 0; seed < seeds; seed++) {
        const s = splitByPatient(ROWS, { ...OPTS, seed });
        const meanSize = (name: SplitName) => s.summary[name].patches / s.summary[name].patients;
        sum += meanSize(n) / meanSize('train');
      }
      assert.ok(sum / seeds > 0.85 && sum / seeds < 1.18, `mean patient size ${n}/train averages ${sum / seeds}`);
    }
  });

  test('a zero ratio leaves that split empty', () => {
    const s = splitByPatient(ROWS, { ...OPTS, ratios: [0.8, 0.2, 0] });
    assert.equal(s.patients.test.length, 0);
    assert.deepEqual(s.summary.test, { patients: 0, patches: 0, positives: 0, positiveRate: 0 });
    assert.ok(Math.abs(shares(s).val - 0.2) < 0.01);
    const trainOnly = splitByPatient(rowsFor([{ id: '1', patches: 3, positiveFraction: 0 }]), { ...OPTS, ratios: [1, 0, 0] });
    assert.deepEqual(trainOnly.patients, { train: ['1'], val: [], test: [] });
    const noVal = splitByPatient(ROWS, { ...OPTS, ratios: [0.85, 0, 0.15] });
    assert.equal(noVal.patients.val.length, 0);
    assert.ok(noVal.patients.test.length > 0);
  });

  test('every split with a ratio above 0 gets a patient, even with extreme ratios', () => {
    const equal = rowsFor(['1', '2', '3'].map((id) => ({ id, patches: 100, positiveFraction: 0.3 })));
    const unequal = rowsFor([{ id: '1', patches: 5000, positiveFraction: 0.3 }, { id: '2', patches: 4000, positiveFraction: 0.1 }, { id: '3', patches: 10, positiveFraction: 0.5 }, { id: '4', patches: 7, positiveFraction: 0 }]);
    for (const rows of [equal, unequal]) {
      for (let seed = 0; seed < 5; seed++) {
        for (const stratify of [true, false]) {
          const s = splitByPatient(rows, { ...OPTS, ratios: [0.98, 0.01, 0.01], seed, stratify });
          for (const n of SPLIT_NAMES) assert.ok(s.patients[n].length >= 1, `${n} empty`);
          checkNoOverlap(s);
        }
      }
    }
  });

  test('too few patients for the non-zero ratios is an IdcError that says why', () => {
    const two = rowsFor([{ id: '1', patches: 10, positiveFraction: 0.5 }, { id: '2', patches: 10, positiveFraction: 0.5 }]);
    assert.throws(() => splitByPatient(two, OPTS), (e: unknown) => {
      rejectsWithCode('TOO_FEW_PATIENTS')(e);
      assert.match((e as Error).message, /Only 2 patients/);
      assert.match((e as Error).message, /train, val, test/);
      return true;
    });
    assert.doesNotThrow(() => splitByPatient(two, { ...OPTS, ratios: [0.8, 0.2, 0] }));
    assert.throws(() => splitByPatient([], OPTS), rejectsWithCode('EMPTY_MANIFEST'));
  });

  test('rejects bad ratios', () => {
    for (const ratios of [[0.7, 0.2, 0.2], [0, 0.5, 0.5], [1.1, -0.1, 0], [0.5, 0.5]] as [number, number, number][]) {
      assert.throws(() => splitByPatient(ROWS, { ...OPTS, ratios }), rejectsWithCode('BAD_CONFIG'), JSON.stringify(ratios));
    }
  });
});

function crafted(patients: Record<SplitName, string[]>): SplitFile {
  const summary = { patients: 1, patches: 1, positives: 0, positiveRate: 0 };
  return {
    version: 1, seed: 1, ratios: [0.7, 0.15, 0.15], stratify: true, manifestHash: 'h', createdAt: new Date(0).toISOString(),
    patients, summary: { train: summary, val: summary, test: summary },
  };
}

describe('overlap, files and staleness', () => {
  test('checkNoOverlap names overlapping patients and their splits', () => {
    assert.doesNotThrow(() => checkNoOverlap({ patients: { train: ['1', '2'], val: ['3'], test: [] } }));
    assert.throws(() => checkNoOverlap({ patients: { train: ['1', '2'], val: ['2', '3'], test: ['1'] } }), (e: unknown) => {
      rejectsWithCode('SPLIT_OVERLAP')(e);
      const m = (e as Error).message;
      assert.match(m, /2 patients/);
      assert.ok(m.includes('1 (train, test)') && m.includes('2 (train, val)'), m);
      return true;
    });
  });

  test('writeSplit refuses a split with overlap and writes nothing', async () => {
    const dir = await tempDir();
    try {
      const file = join(dir, 'split.json');
      await assert.rejects(writeSplit(file, crafted({ train: ['10', '11'], val: ['12'], test: ['11'] })), rejectsWithCode('SPLIT_OVERLAP'));
      await assert.rejects(access(file));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('writeSplit then readSplit round-trips', async () => {
    const dir = await tempDir();
    try {
      const file = join(dir, 'nested', 'split.json');
      const s = splitByPatient(ROWS, OPTS);
      await writeSplit(file, s);
      assert.deepEqual(await readSplit(file), s);
      assert.ok((await readFile(file, 'utf8')).endsWith('\n'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('readSplit: missing, corrupt, wrong shape and overlapping files give IdcErrors', async () => {
    const dir = await tempDir();
    try {
      const file = join(dir, 'split.json');
      await assert.rejects(readSplit(file), rejectsWithCode('NO_SPLIT'));
      await writeFile(file, '{"version": 1, "seed": ');
      await assert.rejects(readSplit(file), (e: unknown) => rejectsWithCode('BAD_SPLIT')(e) && (e as Error).message.includes(file));
      const good = crafted({ train: ['1'], val: ['2'], test: ['3'] });
      const broken: unknown[] = [
        [],
        { ...good, version: 2 },
        { ...good, seed: '1' },
        { ...good, ratios: [0.5, 0.5] },
        { ...good, stratify: 1 },
        { ...good, manifestHash: undefined },
        { ...good, patients: { train: ['1'], val: ['2'] } },
        { ...good, patients: { train: [1], val: ['2'], test: ['3'] } },
        { ...good, summary: { ...good.summary, test: { patients: 1 } } },
      ];
      for (const value of broken) {
        await writeFile(file, JSON.stringify(value));
        await assert.rejects(readSplit(file), rejectsWithCode('BAD_SPLIT'), JSON.stringify(value));
      }
      await writeFile(file, JSON.stringify(crafted({ train: ['1', '2'], val: ['2'], test: ['3'] })));
      await assert.rejects(readSplit(file), (e: unknown) => rejectsWithCode('SPLIT_OVERLAP')(e) && (e as Error).message.includes(file));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('assignRows partitions rows by patient, keeping manifest order', () => {
    const rows = rowsFor([{ id: '1', patches: 3, positiveFraction: 0 }, { id: '2', patches: 2, positiveFraction: 1 }, { id: '3', patches: 1, positiveFraction: 0 }]);
    const mixed = [rows[5], rows[0], rows[3], rows[1], rows[4], rows[2]];
    const out = assignRows(mixed, { patients: { train: ['1'], val: ['3'], test: ['2'] } });
    assert.deepEqual(out.train, [rows[0], rows[1], rows[2]]);
    assert.deepEqual(out.val, [rows[5]]);
    assert.deepEqual(out.test, [rows[3], rows[4]]);
  });

  test('assignRows detects a stale split', () => {
    const s = splitByPatient(ROWS, OPTS);
    const extra = rowsFor([{ id: '999999', patches: 2, positiveFraction: 0 }]);
    assert.throws(() => assignRows([...ROWS, ...extra], s), (e: unknown) => {
      rejectsWithCode('STALE_SPLIT')(e);
      assert.ok((e as Error).message.includes('999999'));
      assert.ok(isIdcError(e) && /split/.test(e.hint ?? ''));
      return true;
    });
  });
});

describe('formatSplitSummary', () => {
  test('an aligned table, a total and the overlap check', () => {
    const s = splitByPatient(ROWS, OPTS);
    const text = formatSplitSummary(s);
    const lines = text.split('\n');
    assert.equal(lines.length, 6);
    assert.match(lines[0], /^split\s+patients\s+patches\s+positives\s+positive rate$/);
    assert.deepEqual(lines.slice(1, 5).map((l) => l.split(/\s+/)[0]), ['train', 'val', 'test', 'total']);
    const widths = new Set(lines.slice(0, 5).map((l) => l.length));
    assert.equal(widths.size, 1, 'right-aligned columns end at the same place');
    assert.ok(lines[1].includes(s.summary.train.patches.toLocaleString('en-US')));
    assert.match(lines[1], /\d+\.\d%$/);
    assert.equal(lines[5], `patient overlap: none (checked ${ALL_PATIENTS.size} patients)`);
  });

  test('reports overlap instead of hiding it', () => {
    const text = formatSplitSummary(crafted({ train: ['1', '2'], val: ['2'], test: ['3'] }));
    assert.match(text.split('\n').at(-1)!, /^patient overlap: FOUND.*2 \(train, val\)/);
  });
});

const SAMPLE = resolve(__dirname, '../../shared/data/idc-sample');

/** The real sample's class structure: 13 all-positive patients, one all-negative, one mostly positive, one tiny all-negative. */
const SAMPLE_LIKE = rowsFor([
  { id: '8913', patches: 873, positiveFraction: 0 }, { id: '8917', patches: 397, positiveFraction: 1 }, { id: '8918', patches: 120, positiveFraction: 1 },
  { id: '8950', patches: 190, positiveFraction: 1 }, { id: '8951', patches: 180, positiveFraction: 1 }, { id: '8955', patches: 181, positiveFraction: 1 },
  { id: '8956', patches: 340, positiveFraction: 1 }, { id: '8957', patches: 83, positiveFraction: 1 }, { id: '8959', patches: 204, positiveFraction: 1 },
  { id: '8974', patches: 369, positiveFraction: 1 }, { id: '8975', patches: 885, positiveFraction: 833 / 885 }, { id: '8980', patches: 209, positiveFraction: 1 },
  { id: '8984', patches: 156, positiveFraction: 1 }, { id: '9022', patches: 99, positiveFraction: 1 }, { id: '9023', patches: 288, positiveFraction: 1 },
  { id: '9259', patches: 4, positiveFraction: 0 },
]);

/** Which classes a split's patches hold. */
function classesOf(rows: readonly ManifestRow[], split: SplitFile, name: SplitName): Set<number> {
  return new Set(assignRows(rows, split)[name].map((r) => r.label));
}

describe('both classes in validation and test', () => {
  test('a one-class validation split is repaired by swapping a patient in from train', () => {
    let repaired = 0;
    for (const ratios of [[0.7, 0.15, 0.15], [0.8, 0.2, 0]] as [number, number, number][]) {
      for (let seed = 0; seed < 10; seed++) {
        for (const stratify of [true, false]) {
          const s = splitByPatient(SAMPLE_LIKE, { ...OPTS, ratios, seed, stratify });
          checkNoOverlap(s);
          const where = `ratios ${ratios}, seed ${seed}, stratify ${stratify}`;
          for (const n of SPLIT_NAMES.filter((_, j) => ratios[j] > 0)) assert.deepEqual(classesOf(SAMPLE_LIKE, s, n), new Set([0, 1]), `${n} (${where}): ${s.patients[n]}`);
          assert.equal(SPLIT_NAMES.flatMap((n) => s.patients[n]).length, 16);
          assert.deepEqual(s.warnings ?? [], [], where);
          if (s.notes?.length) {
            repaired++;
            assert.match(s.notes.join('\n'), /had no IDC-(negative|positive) patches: patient \d+ moved there from/);
          }
        }
      }
    }
    // The plain assignment leaves val or test without negatives for most seeds: the repair really ran.
    assert.ok(repaired >= 10, `repaired ${repaired} of 40 splits`);
  });

  test('the repaired split keeps patch shares near the ratios and is the same for the same seed', () => {
    const a = splitByPatient(SAMPLE_LIKE, { ...OPTS, seed: 3 });
    const b = splitByPatient(new Rng(4).shuffle(SAMPLE_LIKE.slice()), { ...OPTS, seed: 3 });
    assert.deepEqual(b.patients, a.patients);
    assert.deepEqual(b.notes, a.notes);
    const c = splitByPatient(SAMPLE_LIKE, { ...OPTS, seed: 5 });
    assert.notDeepEqual(c.patients, a.patients, 'the seed still changes the split');
    // Three negative patients for three splits: each split gets one, train the biggest share.
    for (const s of [a, c]) {
      assert.equal(['8913', '8975', '9259'].filter((id) => s.patients.train.includes(id)).length, 1);
      assert.ok(Math.abs(shares(s).train - 0.7) < 0.12, `train share ${shares(s).train}`);
    }
  });

  test('a manifest with one class only is left alone', () => {
    const onlyPositive = rowsFor(['1', '2', '3', '4', '5'].map((id) => ({ id, patches: 20, positiveFraction: 1 })));
    const s = splitByPatient(onlyPositive, OPTS);
    assert.deepEqual(s.warnings ?? [], []);
    assert.deepEqual(s.notes ?? [], []);
  });

  test('too few patients of a class: the split says which class, how many, and what to change', () => {
    const rows = rowsFor([
      { id: '1', patches: 300, positiveFraction: 0 }, { id: '2', patches: 10, positiveFraction: 0 },
      ...['3', '4', '5', '6', '7', '8'].map((id) => ({ id, patches: 100, positiveFraction: 1 })),
    ]);
    const s = splitByPatient(rows, OPTS);
    const text = (s.warnings ?? []).join('\n');
    assert.match(text, /IDC-negative/);
    assert.match(text, /only 2 patients \(1, 2\) have IDC-negative patches/i);
    assert.match(text, /train, val and test/);
    assert.match(text, /ratio.* to 0|add patients/i);
    assert.ok(formatSplitSummary(s).includes(s.warnings![0]), 'the summary shows the warning');
    // Both negative patients are used: train keeps one, val or test gets the other.
    const withNeg = SPLIT_NAMES.filter((n) => classesOf(rows, s, n).has(0));
    assert.equal(withNeg.length, 2);
    assert.ok(withNeg.includes('train'));
    // With the test ratio at 0, two negative patients are enough.
    const two = splitByPatient(rows, { ...OPTS, ratios: [0.8, 0.2, 0] });
    assert.deepEqual(two.warnings ?? [], []);
    assert.deepEqual(classesOf(rows, two, 'val'), new Set([0, 1]));
  });

  test('real sample: val (and test) hold both classes for every seed', { skip: !existsSync(SAMPLE) && 'shared sample not present' }, () => {
    const rows = sampleRows();
    assert.equal(new Set(rows.map((r) => r.patient)).size, 16);
    for (const ratios of [[0.8, 0.2, 0], [0.7, 0.15, 0.15]] as [number, number, number][]) {
      for (let seed = 0; seed < 8; seed++) {
        const s = splitByPatient(rows, { ...OPTS, ratios, seed });
        for (const n of SPLIT_NAMES.filter((_, j) => ratios[j] > 0)) assert.deepEqual(classesOf(rows, s, n), new Set([0, 1]), `${n}, ratios ${ratios}, seed ${seed}`);
        assert.deepEqual(s.warnings ?? [], []);
      }
    }
  });
});


/** Manifest rows of the real sample from its file names (read in place, nothing written). */
function sampleRows(): ManifestRow[] {
  const rows: ManifestRow[] = [];
  for (const patient of readdirSync(SAMPLE)) {
    for (const label of [0, 1] as const) {
      const dir = join(SAMPLE, patient, String(label));
      if (!existsSync(dir)) continue;
      for (const f of readdirSync(dir)) {
        const m = /_x(\d+)_y(\d+)_class([01])\.png$/.exec(f);
        if (m) rows.push({ id: f.slice(0, -4), patient, x: Number(m[1]), y: Number(m[2]), label, width: 50, height: 50, source: `${patient}/${label}/${f}` });
      }
    }
  }
  return rows;
}
