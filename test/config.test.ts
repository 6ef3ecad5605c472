import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, isAbsolute } from 'node:path';
import schema from '../schema/idc.config.schema.json';
import {
  CONFIG_FILE_NAME, ConfigError, JsoncParseError, defaultConfig, defaultConfigText, loadConfig,
  parseJsonc, resolveConfigPath, validateConfig,
} from '../src/core/config';
import { isIdcError } from '../src/core/errors';

type SchemaNode = { type?: string; properties?: Record<string, SchemaNode>; default?: unknown; description?: string; additionalProperties?: unknown };

/** Leaf fields of the schema as [dotted path, node]. */
function leaves(node: SchemaNode, prefix = ''): [string, SchemaNode][] {
  const out: [string, SchemaNode][] = [];
  for (const [k, child] of Object.entries(node.properties ?? {})) {
    if (k === '$schema') continue;
    const p = prefix ? `${prefix}.${k}` : k;
    if (child.type === 'object') out.push(...leaves(child, p));
    else out.push([p, child]);
  }
  return out;
}

function at(obj: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)?.[k], obj);
}

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'idc-config-'));
}

/** Runs fn, expects a ConfigError, returns its message. */
function configErrorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected a ConfigError');
}

describe('schema and defaults', () => {
  test('defaultConfig equals the documented defaults', () => {
    assert.deepEqual(defaultConfig(), {
      paths: { archive: 'data/raw', output: 'idc-output' },
      organize: { materialize: 'none' },
      split: { ratios: [0.7, 0.15, 0.15], seed: 42, stratify: true },
      synth: { patients: 24, seed: 1 },
      engine: { backend: 'auto', threads: 0, python: '', torch: { processes: 1, nodes: 1, masterAddress: '', masterPort: 0, timeoutSeconds: 300 } },
      data: { edgePatches: 'resize', cacheDir: '', stainNormalization: 'macenko' },
      model: { filters: [32, 64, 128], dense: [64, 64, 64], dropout: 0.2, l2: 0.0001, bnMomentum: 0.9 },
      train: {
        epochs: 20, batchSize: 64, learningRate: 0.001, loss: 'bce', focalGamma: 2, classWeights: 'none',
        augment: { flipHorizontal: true, flipVertical: true, rotate: 0.3, stainJitter: { scale: 0, shift: 0 } },
        earlyStopping: { enabled: true, monitor: 'val_auc', minDelta: 0.0001, patience: 5, restoreBestWeights: true, startFromEpoch: 0 },
        reduceLrOnPlateau: { enabled: true, monitor: 'val_auc', factor: 0.5, patience: 2, minDelta: 0.0001, cooldown: 0, minLr: 1e-6 },
        stepsPerEpoch: 0, preciseBatchNorm: 100, seed: 42,
      },
      evaluate: {
        split: 'test', threshold: 0.5, recallTarget: 0.95, pinnedThresholds: [], preprocess: 'divide255', batchSize: 256, gradCamExamples: 24, tta: 'none',
        bootstrap: { resamples: 2000, seed: 42, confidence: 0.95 }, calibration: 'none',
      },
    });
  });

  test('defaultConfig is exactly the schema defaults, leaf by leaf', () => {
    const cfg = defaultConfig();
    const ls = leaves(schema as SchemaNode);
    assert.ok(ls.length >= 8);
    for (const [path, node] of ls) assert.deepEqual(at(cfg, path), node.default, path);
    // And nothing beyond them.
    const count = (o: unknown): number => Object.values(o as object).reduce<number>((n, v) => n + (v && typeof v === 'object' && !Array.isArray(v) ? count(v) : 1), 0);
    assert.equal(count(cfg), ls.length);
  });

  test('every field has a description and a default; every object forbids extra keys', () => {
    const walk = (node: SchemaNode, path: string): void => {
      if (node.type === 'object') assert.equal(node.additionalProperties, false, `${path || '(root)'} additionalProperties`);
      for (const [k, child] of Object.entries(node.properties ?? {})) {
        const p = path ? `${path}.${k}` : k;
        assert.ok(typeof child.description === 'string' && child.description.length > 10, `${p} description`);
        if (k !== '$schema') assert.ok('default' in child, `${p} default`);
        walk(child, p);
      }
    };
    walk(schema as SchemaNode, '');
  });

  test('defaultConfig returns a fresh object each time', () => {
    const a = defaultConfig();
    a.split.ratios[0] = 0.5;
    a.paths.output = 'x';
    assert.deepEqual(defaultConfig().split.ratios, [0.7, 0.15, 0.15]);
    assert.equal(defaultConfig().paths.output, 'idc-output');
  });

  test('defaultConfigText is plain pretty JSON of the defaults, without $schema', () => {
    const text = defaultConfigText();
    assert.deepEqual(JSON.parse(text), defaultConfig());
    assert.ok(!text.includes('$schema'));
    assert.ok(!text.includes('//'));
    assert.ok(text.endsWith('}\n'));
    assert.match(text, /\n {2}"paths": \{\n {4}"archive": "data\/raw",/);
    assert.match(text, /"ratios": \[0\.7, 0\.15, 0\.15\]/);
  });
});

describe('validateConfig', () => {
  test('partial configs are completed with defaults', () => {
    const cfg = validateConfig({ split: { seed: 7 }, paths: { output: 'out' } });
    assert.equal(cfg.split.seed, 7);
    assert.equal(cfg.split.stratify, true);
    assert.deepEqual(cfg.split.ratios, [0.7, 0.15, 0.15]);
    assert.equal(cfg.paths.output, 'out');
    assert.equal(cfg.paths.archive, 'data/raw');
    assert.equal(cfg.synth.patients, 24);
  });

  test('does not mutate its input', () => {
    const input = { split: { seed: 3 } };
    validateConfig(input);
    assert.deepEqual(input, { split: { seed: 3 } });
  });

  test('accepts and drops "$schema"', () => {
    const cfg = validateConfig({ $schema: './schema/idc.config.schema.json', synth: { seed: 9 } });
    assert.equal(cfg.synth.seed, 9);
    assert.ok(!('$schema' in cfg));
  });

  const bad: [string, unknown, string, RegExp?][] = [
    ['ratio below 0', { split: { ratios: [0.7, -0.1, 0.4] } }, 'split.ratios[1]', />= 0/],
    ['ratio above 1', { split: { ratios: [1.2, 0, 0] } }, 'split.ratios[0]', /<= 1/],
    ['two ratios', { split: { ratios: [0.5, 0.5] } }, 'split.ratios', /fewer than 3/],
    ['four ratios', { split: { ratios: [0.5, 0.2, 0.2, 0.1] } }, 'split.ratios', /more than 3/],
    ['ratio as string', { split: { ratios: [0.7, '0.15', 0.15] } }, 'split.ratios[1]', /must be a number/],
    ['ratios not summing to 1', { split: { ratios: [0.7, 0.2, 0.2] } }, 'split.ratios', /must sum to 1 \(they sum to 1\.1\)/],
    ['train ratio 0', { split: { ratios: [0, 0.5, 0.5] } }, 'split.ratios[0]', /train ratio must be > 0/],
    ['fractional seed', { split: { seed: 1.5 } }, 'split.seed', /whole number/],
    ['negative seed', { split: { seed: -1 } }, 'split.seed', />= 0/],
    ['seed as string', { split: { seed: '42' } }, 'split.seed', /found "42"/],
    ['stratify as string', { split: { stratify: 'yes' } }, 'split.stratify', /must be a boolean/],
    ['unknown materialize', { organize: { materialize: 'hardlink' } }, 'organize.materialize', /one of "none", "link", "copy"/],
    ['empty archive path', { paths: { archive: '' } }, 'paths.archive', /fewer than 1/],
    ['output as number', { paths: { output: 3 } }, 'paths.output', /must be a string \(found 3\)/],
    ['zero synth patients', { synth: { patients: 0 } }, 'synth.patients', />= 1/],
    ['section of wrong type', { synth: [] }, 'synth', /must be an object \(found an array\)/],
    ['null section', { paths: null }, 'paths', /found null/],
    ['typo in a key', { split: { stratfy: false } }, 'split.stratfy', /unknown setting \(did you mean "stratify"\?\)/],
    ['unknown section', { training: {} }, 'training', /unknown setting/],
    ['wrong case key', { Paths: {} }, 'Paths', /did you mean "paths"/],
    ['root not an object', [1, 2], '(root)', /must hold a JSON object such as \{\}/],
  ];
  for (const [name, value, path, re] of bad) {
    test(`rejects ${name}, naming ${path}`, () => {
      const e = configErrorOf(() => validateConfig(value, '/w/idc.config.json'));
      assert.equal(e.code, 'BAD_CONFIG');
      assert.ok(isIdcError(e) && e.hint);
      assert.ok(e.message.includes('/w/idc.config.json'), e.message);
      const problem = e.problems.find((p) => p.path === path);
      assert.ok(problem, `no problem at ${path} in:\n${e.message}`);
      if (re) assert.match(problem.message, re);
      assert.ok(e.message.includes(`${path}: ${problem.message}`));
    });
  }

  test('lists every problem at once', () => {
    const e = configErrorOf(() => validateConfig({
      paths: { archiv: 'x' },
      organize: { materialize: 'nope' },
      split: { ratios: [0.5, 0.1, 0.1], seed: 'a' },
      synth: { patients: -3 },
    }));
    const paths = e.problems.map((p) => p.path).sort();
    assert.deepEqual(paths, ['organize.materialize', 'paths.archiv', 'split.ratios', 'split.seed', 'synth.patients']);
    assert.equal(e.message.split('\n').length, 6);
  });

  test('ratios within 1e-6 of summing to 1 are accepted', () => {
    assert.deepEqual(validateConfig({ split: { ratios: [0.8, 0.1, 0.1] } }).split.ratios, [0.8, 0.1, 0.1]);
    assert.deepEqual(validateConfig({ split: { ratios: [1, 0, 0] } }).split.ratios, [1, 0, 0]);
    validateConfig({ split: { ratios: [0.3333333, 0.3333333, 0.3333334] } });
    configErrorOf(() => validateConfig({ split: { ratios: [0.333, 0.333, 0.333] } }));
  });
});

describe('parseJsonc', () => {
  test('accepts comments and trailing commas', () => {
    const text = `// IDC settings
{
  /* where the data is */
  "paths": {
    "archive": "data/raw", // the folder
    "output": "out", /* trailing comma next */
  },
  "split": { "ratios": [0.8, 0.1, 0.1,], },
  /* multi
     line */
}
// end`;
    assert.deepEqual(parseJsonc(text), { paths: { archive: 'data/raw', output: 'out' }, split: { ratios: [0.8, 0.1, 0.1] } });
  });

  test('leaves comment-like text and commas inside strings alone', () => {
    const text = '{"a": "http://x/*y*/", "b": "// not a comment", "c": "x,}", "d": "q\\"//", "e": "\\\\", /* c */ "f": ",]"}';
    assert.deepEqual(parseJsonc(text), { a: 'http://x/*y*/', b: '// not a comment', c: 'x,}', d: 'q"//', e: '\\', f: ',]' });
  });

  test('parses the JSON grammar exactly', () => {
    const text = '{"n": -1.5e3, "z": 0, "t": true, "f": false, "u": null, "s": "\\u00e9\\n\\t", "arr": [[], {}, [1]]}';
    assert.deepEqual(parseJsonc(text), JSON.parse(text));
    assert.equal(parseJsonc('\uFEFF{"a": 1}\r\n') instanceof Object, true);
    assert.deepEqual(parseJsonc('  [1, 2]  '), [1, 2]);
  });

  test('a "__proto__" key is a plain property, not a prototype', () => {
    const v = parseJsonc('{"__proto__": {"polluted": true}}') as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(v), Object.prototype);
    assert.deepEqual(Object.keys(v), ['__proto__']);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  const errors: [string, string, number, number, RegExp][] = [
    ['missing value', '{\n  "a": 1,\n  "b": }\n', 3, 8, /a value was expected/],
    ['missing comma', '{\n  "a": 1\n  "b": 2\n}', 3, 3, /Expected ',' or '}'/],
    ['single quotes', "{\n\t'a': 1}", 2, 2, /double quotes/],
    ['unquoted key', '{ a: 1 }', 1, 3, /double quotes/],
    ['unterminated comment', '{\n /* open\n "a": 1}', 2, 2, /Unterminated \/\* comment/],
    ['unterminated string', '{"a": "abc\n}', 1, 11, /Unterminated string/],
    ['bad escape', '{"a": "\\x"}', 1, 8, /Invalid escape/],
    ['empty file', '  \n // only a comment\n', 3, 1, /empty/],
    ['garbage after value', '{} {}', 1, 4, /after the end/],
    ['unclosed object', '{"a": [1, 2]', 1, 13, /missing '\}'/],
    ['unclosed array', '[1, 2', 1, 6, /missing '\]'/],
    ['leading zero', '{"a": 01}', 1, 7, /Invalid number/],
    ['double comma', '[1,,2]', 1, 4, /a value was expected/],
    ['duplicate key', '{"a": 1,\n "a": 2}', 2, 2, /Duplicate property "a"/],
    ['NaN', '{"a": NaN}', 1, 7, /a value was expected/],
  ];
  for (const [name, text, line, column, re] of errors) {
    test(`reports ${name} at ${line}:${column}`, () => {
      assert.throws(() => parseJsonc(text, 'cfg.json'), (e: unknown) => {
        assert.ok(e instanceof JsoncParseError, String(e));
        assert.equal(e.code, 'BAD_CONFIG_JSON');
        assert.equal(`${e.line}:${e.column}`, `${line}:${column}`, e.message);
        assert.ok(e.message.startsWith(`cfg.json:${line}:${column}: `), e.message);
        assert.match(e.reason, re);
        return true;
      });
    });
  }
});

describe('loadConfig', () => {
  test('without a file: defaults, no file, baseDir = cwd', async () => {
    const dir = await tempDir();
    try {
      const loaded = await loadConfig({ cwd: dir });
      assert.deepEqual(loaded.config, defaultConfig());
      assert.equal(loaded.file, undefined);
      assert.equal(loaded.baseDir, dir);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('reads <cwd>/idc.config.json with comments and trailing commas', async () => {
    const dir = await tempDir();
    try {
      const file = join(dir, CONFIG_FILE_NAME);
      await writeFile(file, '{\n  // mine\n  "split": { "seed": 7, },\n}\n');
      const loaded = await loadConfig({ cwd: dir });
      assert.equal(loaded.file, file);
      assert.equal(loaded.baseDir, dir);
      assert.equal(loaded.config.split.seed, 7);
      assert.equal(loaded.config.split.stratify, true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('configPath: relative to cwd, wins over ./idc.config.json, must exist', async () => {
    const dir = await tempDir();
    try {
      await writeFile(join(dir, CONFIG_FILE_NAME), '{"split": {"seed": 1}}');
      await mkdir(join(dir, 'other'));
      await writeFile(join(dir, 'other', 'alt.json'), '{"split": {"seed": 2}}');
      const loaded = await loadConfig({ cwd: dir, configPath: 'other/alt.json' });
      assert.equal(loaded.config.split.seed, 2);
      assert.equal(loaded.file, join(dir, 'other', 'alt.json'));
      assert.equal(loaded.baseDir, join(dir, 'other'));
      await assert.rejects(loadConfig({ cwd: dir, configPath: 'missing.json' }), (e: unknown) => {
        assert.ok(isIdcError(e) && e.code === 'CONFIG_NOT_FOUND');
        assert.ok(e.message.includes(join(dir, 'missing.json')));
        return true;
      });
      await assert.rejects(loadConfig({ cwd: dir, configPath: 'other' }), (e: unknown) => isIdcError(e) && e.code === 'CONFIG_NOT_FOUND');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('syntax errors name file:line:column; rule errors name the file and path', async () => {
    const dir = await tempDir();
    try {
      const file = join(dir, CONFIG_FILE_NAME);
      await writeFile(file, '{\n  "split": {\n    "seed": 1\n    "stratify": true\n  }\n}\n');
      await assert.rejects(loadConfig({ cwd: dir }), (e: unknown) => e instanceof JsoncParseError && e.message.startsWith(`${file}:4:5: `));
      await writeFile(file, '{"split": {"ratios": [0.7, 0.2, 0.2]}}');
      await assert.rejects(loadConfig({ cwd: dir }), (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        assert.equal(e.file, file);
        assert.ok(e.message.includes(file) && e.message.includes('split.ratios: must sum to 1'), e.message);
        return true;
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('overrides are deep-merged over the file and win; undefined keeps the file value', async () => {
    const dir = await tempDir();
    try {
      await writeFile(join(dir, CONFIG_FILE_NAME), '{"split": {"seed": 5, "stratify": false, "ratios": [0.6, 0.2, 0.2]}, "synth": {"patients": 10}}');
      const loaded = await loadConfig({
        cwd: dir,
        overrides: { split: { seed: 99, stratify: undefined, ratios: [0.8, 0.1, 0.1] }, organize: { materialize: 'copy' } },
      });
      assert.equal(loaded.config.split.seed, 99);
      assert.equal(loaded.config.split.stratify, false);
      assert.deepEqual(loaded.config.split.ratios, [0.8, 0.1, 0.1]);
      assert.equal(loaded.config.synth.patients, 10);
      assert.equal(loaded.config.organize.materialize, 'copy');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('overrides are validated too, and say so', async () => {
    const dir = await tempDir();
    try {
      await assert.rejects(loadConfig({ cwd: dir, overrides: { split: { ratios: [0.5, 0.5, 0.5] } } }), (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        assert.match(e.message, /command-line options/);
        assert.ok(e.problems.some((p) => p.path === 'split.ratios'));
        return true;
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('path overrides resolve against cwd; file paths against the file folder', async () => {
    const dir = await tempDir();
    try {
      await mkdir(join(dir, 'proj'));
      await writeFile(join(dir, 'proj', CONFIG_FILE_NAME), '{"paths": {"archive": "raw.zip", "output": "/abs/out"}}');
      const fromFile = await loadConfig({ cwd: dir, configPath: 'proj/idc.config.json' });
      assert.equal(resolveConfigPath(fromFile, fromFile.config.paths.archive), join(dir, 'proj', 'raw.zip'));
      assert.equal(resolveConfigPath(fromFile, fromFile.config.paths.output), '/abs/out');
      const withFlag = await loadConfig({ cwd: dir, configPath: 'proj/idc.config.json', overrides: { paths: { archive: 'elsewhere/a.zip' } } });
      assert.equal(withFlag.config.paths.archive, join(dir, 'elsewhere', 'a.zip'));
      assert.equal(resolveConfigPath(withFlag, withFlag.config.paths.archive), join(dir, 'elsewhere', 'a.zip'));
      const home = resolveConfigPath(fromFile, '~/x');
      assert.ok(isAbsolute(home) && home.endsWith('x') && !home.includes('~'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

test('a config file holding [] or null (not an object) is refused naming the file, with or without flag overrides; the language server says the same', async () => {
  const { configDiagnostics } = await import('../src/server/config-diagnostics');
  const dir = await mkdtemp(join(tmpdir(), 'idc-cfg-'));
  try {
    const file = join(dir, CONFIG_FILE_NAME);
    for (const text of ['[]', 'null', '42']) {
      await writeFile(file, text);
      for (const overrides of [undefined, {}, { train: { epochs: 2 } }]) {
        await assert.rejects(loadConfig({ cwd: dir, overrides }), (e: Error) => {
          assert.ok(e instanceof ConfigError, String(e));
          assert.match(e.message, new RegExp(`${file.replace(/[.\\/]/g, '\\$&')}`));
          assert.match(e.message, /must hold a JSON object such as \{\}/);
          return true;
        }, `${text} with overrides ${JSON.stringify(overrides)}`);
      }
      const diags = configDiagnostics(text, file, { backendProbe: () => undefined, exists: () => true });
      assert.equal(diags.length, 1, text);
      assert.match(diags[0].message, /must hold a JSON object such as \{\}/);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
