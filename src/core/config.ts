import { promises as fsp } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { homedir } from 'node:os';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import schema from '../../schema/idc.config.schema.json';
import { IdcError } from './errors';

/**
 * idc.config.json. The schema is the single source of truth for defaults and field rules:
 * adding a section means adding it to the schema and to this interface, nothing else.
 */
export interface IdcConfig {
  paths: { archive: string; output: string };
  organize: { materialize: 'none' | 'link' | 'copy' };
  split: { ratios: [number, number, number]; seed: number; stratify: boolean };
  synth: { patients: number; seed: number };
  /** python: interpreter of the torch engine; empty = python3 on PATH. */
  engine: { backend: BackendName; threads: number; python: string; torch: TorchLaunchConfig };
  data: { edgePatches: 'resize' | 'pad' | 'skip'; cacheDir: string; stainNormalization: 'none' | 'macenko' };
  model: { filters: number[]; dense: number[]; dropout: number; l2: number; /** Schema default 0.9; optional so older configs typed in code still fit. */ bnMomentum?: number };
  train: TrainConfig;
  evaluate: EvaluateConfig;
}

export interface EvaluateConfig {
  split: 'test' | 'val' | 'train';
  threshold: number;
  recallTarget: number;
  pinnedThresholds: number[];
  preprocess: 'divide255' | 'none' | 'minusOneToOne';
  batchSize: number;
  gradCamExamples: number;
  tta: 'none' | 'flips' | 'dihedral';
  /** Patient cluster bootstrap; resamples 0 disables it. */
  bootstrap: { resamples: number; seed: number; confidence: number };
  calibration: 'none' | 'temperature';
}

/** engine.torch: one engine process, or torchrun with processes × nodes data-parallel ranks (this machine is node 0). */
export interface TorchLaunchConfig { processes: number; nodes: number; masterAddress: string; masterPort: number; timeoutSeconds: number }

export type BackendName = 'auto' | 'tensorflow-gpu' | 'tensorflow' | 'webgpu' | 'wasm' | 'cpu' | 'torch';
export type MonitorName = 'val_loss' | 'val_auc';

export interface TrainConfig {
  epochs: number;
  batchSize: number;
  learningRate: number;
  loss: 'focal' | 'bce';
  focalGamma: number;
  classWeights: 'balanced' | 'none' | { '0': number; '1': number };
  augment: { flipHorizontal: boolean; flipVertical: boolean; rotate: number; stainJitter: { scale: number; shift: number } };
  earlyStopping: { enabled: boolean; monitor: MonitorName; minDelta: number; patience: number; restoreBestWeights: boolean; startFromEpoch: number };
  reduceLrOnPlateau: { enabled: boolean; monitor: MonitorName; factor: number; patience: number; minDelta: number; cooldown: number; minLr: number };
  stepsPerEpoch: number;
  /** Training batches the batch-norm statistics are recomputed from at each epoch's end; 0 = moving averages only. */
  preciseBatchNorm: number;
  seed: number;
}

export type DeepPartial<T> = T extends readonly unknown[] ? T : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;

export const CONFIG_FILE_NAME = 'idc.config.json';

export interface LoadedConfig {
  config: IdcConfig;
  /** Absolute path of the file read; absent when only defaults (and overrides) apply. */
  file?: string;
  /** Folder that relative paths resolve against: the config file's folder, else cwd. */
  baseDir: string;
  /** The fields the user set, as opposed to defaults the schema filled in; absent when unknown. */
  explicit?: ExplicitFields;
}

/** Dotted paths of the fields the config file ('file') or a command-line option ('option', winning) set, e.g. "data.stainNormalization". */
export type ExplicitFields = ReadonlyMap<string, 'file' | 'option'>;

/** Who set `path` (a field, or a section: any field under it): undefined when only its default applies. */
export function explicitlySet(fields: ExplicitFields | undefined, path: string): 'file' | 'option' | undefined {
  if (!fields) return undefined;
  const own = fields.get(path);
  if (own) return own;
  let found: 'file' | 'option' | undefined;
  for (const [k, by] of fields) {
    if (!k.startsWith(`${path}.`)) continue;
    if (by === 'option') return by;
    found = by;
  }
  return found;
}

/** Dotted paths of the leaves (scalars and arrays) of a parsed config document. */
function leafPaths(v: unknown, prefix = '', out: string[] = []): string[] {
  if (!isPlainObject(v)) {
    if (prefix && v !== undefined) out.push(prefix);
    return out;
  }
  for (const [k, x] of Object.entries(v)) leafPaths(x, prefix ? `${prefix}.${k}` : k, out);
  return out;
}

export interface ConfigProblem {
  /** JSON path such as "split.ratios[1]", "(root)" for the whole document. */
  path: string;
  message: string;
}

/** A config that parsed but broke the rules; `problems` lists every one (for diagnostics). */
export class ConfigError extends IdcError {
  constructor(readonly problems: ConfigProblem[], readonly file?: string, source = file ?? 'the configuration') {
    super(
      `Invalid settings in ${source}:\n${problems.map((p) => `  - ${p.path}: ${p.message}`).join('\n')}`,
      `Fix the field${problems.length > 1 ? 's' : ''} listed above; in VS Code, hovering a field of ${CONFIG_FILE_NAME} shows what it expects.`,
      'BAD_CONFIG',
    );
  }
}

/** A syntax error in a JSON-with-comments file, with its 1-based position. */
export class JsoncParseError extends IdcError {
  constructor(readonly file: string, readonly offset: number, readonly line: number, readonly column: number, readonly reason: string) {
    super(`${file}:${line}:${column}: ${reason}`, 'Fix the JSON syntax at that position (comments and trailing commas are allowed).', 'BAD_CONFIG_JSON');
  }
}

/**
 * Why a config cannot be used, one line per problem: the language server's workspaceInfo and the
 * side bar both show them. `other` words an error that is not the config's.
 */
export function configProblemLines(e: unknown, other = (x: unknown): string => String((x as Error)?.message ?? x)): string[] {
  if (e instanceof ConfigError) return e.problems.map((p) => `${p.path}: ${p.message}`);
  if (e instanceof JsoncParseError) return [`line ${e.line}, column ${e.column}: ${e.reason}`];
  return [e instanceof IdcError ? e.message : other(e)];
}

// ---------------------------------------------------------------------------------------------
// Schema validation

// VS Code's schema extensions: annotations only, ajv must not reject them in strict mode.
const EDITOR_KEYWORDS = [
  'markdownDescription', 'enumDescriptions', 'markdownEnumDescriptions', 'deprecationMessage',
  'defaultSnippets', 'doNotSuggest', 'errorMessage', 'patternErrorMessage', 'allowComments', 'allowTrailingCommas',
];

let compiled: ValidateFunction | undefined;

function validator(): ValidateFunction {
  if (!compiled) {
    const ajv = new Ajv({ allErrors: true, useDefaults: true, verbose: true, strict: true });
    ajv.addVocabulary(EDITOR_KEYWORDS);
    compiled = ajv.compile(schema);
  }
  return compiled;
}

/** Validates a parsed config (not mutated), fills defaults, and throws a ConfigError listing every problem. */
export function validateConfig(value: unknown, file?: string): IdcConfig {
  return validateWithSource(value, file, file);
}

function validateWithSource(value: unknown, file: string | undefined, source: string | undefined): IdcConfig {
  // useDefaults writes into the data, so work on a copy.
  const data = cloneJson(value);
  const validate = validator();
  const problems: ConfigProblem[] = [];
  if (!validate(data)) for (const e of validate.errors ?? []) problems.push(describeAjvError(e));
  problems.push(...semanticProblems(data));
  const seen = new Set<string>();
  const unique = problems.filter((p) => {
    const k = `${p.path}\u0000${p.message}`;
    return seen.has(k) ? false : (seen.add(k), true);
  });
  if (unique.length) throw new ConfigError(unique, file, source);
  const config = data as IdcConfig & { $schema?: string };
  delete config.$schema;
  return config;
}

/** Rules JSON Schema can't express. Runs on whatever parts are well-typed so all problems show at once. */
function semanticProblems(data: unknown): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const ratios = (data as { split?: { ratios?: unknown } } | undefined)?.split?.ratios;
  if (Array.isArray(ratios) && ratios.length === 3 && ratios.every((r) => typeof r === 'number' && Number.isFinite(r))) {
    const sum = (ratios as number[]).reduce((a, b) => a + b, 0);
    if (Math.abs(sum - 1) > 1e-6) out.push({ path: 'split.ratios', message: `must sum to 1 (they sum to ${round(sum)})` });
    if (!(ratios[0] > 0)) out.push({ path: 'split.ratios[0]', message: 'the train ratio must be > 0' });
  }
  // Other machines must find node 0: loopback and a random port would leave them waiting.
  const torch = (data as { engine?: { torch?: Partial<TorchLaunchConfig> } } | undefined)?.engine?.torch;
  if (typeof torch?.nodes === 'number' && torch.nodes > 1) {
    const addr = typeof torch.masterAddress === 'string' ? torch.masterAddress.trim() : undefined;
    if (addr !== undefined && (addr === '' || /^(localhost|127\.|::1$)/i.test(addr))) {
      out.push({ path: 'engine.torch.masterAddress', message: `must be this machine's address as ${torch.nodes > 2 ? `the other ${torch.nodes - 1} machines reach` : 'the other machine reaches'} it (e.g. "10.0.0.5") when engine.torch.nodes is ${torch.nodes}${addr ? ` (found ${JSON.stringify(addr)})` : ''}` });
    }
    if (torch.masterPort === 0) out.push({ path: 'engine.torch.masterPort', message: `must be a fixed port open to the other machines (e.g. 29500) when engine.torch.nodes is ${torch.nodes}; 0 (a free port) works on one machine only` });
  }
  return out;
}

function round(x: number): number {
  return Math.round(x * 1e9) / 1e9;
}

function describeAjvError(e: ErrorObject): ConfigProblem {
  const base = pointerToPath(e.instancePath);
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties': {
      const name = String(params.additionalProperty);
      const known = Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {}).filter((k) => k !== '$schema');
      const guess = closest(name, known);
      const hint = guess ? ` (did you mean "${guess}"?)` : known.length ? ` (known: ${known.join(', ')})` : '';
      return { path: joinPath(base, name), message: `unknown setting${hint}` };
    }
    case 'type':
      if (!base) return { path: '(root)', message: `must hold a JSON object such as {} (found ${typeName(e.data)})` };
      return { path: base, message: `must be ${article(String(params.type))} (found ${typeName(e.data)})` };
    case 'enum':
      return { path: base || '(root)', message: `must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')} (found ${JSON.stringify(e.data)})` };
    default:
      return { path: base || '(root)', message: e.message ?? `fails "${e.keyword}"` };
  }
}

/** "/split/ratios/1" -> "split.ratios[1]". */
function pointerToPath(pointer: string): string {
  if (!pointer) return '';
  let out = '';
  for (const raw of pointer.slice(1).split('/')) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    out = /^\d+$/.test(seg) ? `${out}[${seg}]` : joinPath(out, seg);
  }
  return out;
}

function joinPath(base: string, key: string): string {
  const k = /^[A-Za-z_$][\w$]*$/.test(key) ? key : JSON.stringify(key);
  return base ? `${base}.${k}` : k;
}

function article(type: string): string {
  const t = type === 'integer' ? 'whole number' : type;
  return /^[aeiou]/.test(t) ? `an ${t}` : `a ${t}`;
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  return typeof v === 'object' ? 'an object' : String(v);
}

/** A known name within a small edit distance (typos, wrong case), else undefined. */
function closest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = k.toLowerCase() === name.toLowerCase() ? 0 : editDistance(name.toLowerCase(), k.toLowerCase());
    if (d < bestD) { bestD = d; best = k; }
  }
  return best !== undefined && bestD <= Math.max(1, Math.floor(best.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

// ---------------------------------------------------------------------------------------------
// Defaults, loading, merging

/** The schema's defaults, filled in by ajv; no second copy of the values lives in code. */
export function defaultConfig(): IdcConfig {
  return validateConfig({});
}

/** The default config as pretty JSON (short arrays on one line), for "Open Config" to create. */
export function defaultConfigText(preset?: PresetName): string {
  return prettyJson(preset ? presetConfig(preset) : defaultConfig()) + '\n';
}

/**
 * The reference notebook's training recipe, field by field where it differs from the defaults
 * (Keras: EarlyStopping(min_delta=0.001, patience=5, start_from_epoch=10, restore_best_weights),
 * ReduceLROnPlateau(0.5, patience=3, min_lr=1e-6), BinaryFocalCrossentropy(gamma=2)).
 */
export const PRESETS = {
  notebook: {
    train: {
      epochs: 60, batchSize: 32, learningRate: 0.001, loss: 'focal', focalGamma: 2, classWeights: { '0': 1, '1': 4.2 },
      earlyStopping: { enabled: true, monitor: 'val_loss', minDelta: 0.001, patience: 5, startFromEpoch: 10, restoreBestWeights: true },
      reduceLrOnPlateau: { enabled: true, monitor: 'val_loss', factor: 0.5, patience: 3, minLr: 0.000001 },
      preciseBatchNorm: 0,
    },
    model: { dropout: 0.5, l2: 0.01, bnMomentum: 0.99 },
    data: { stainNormalization: 'none' },
    evaluate: { tta: 'none' },
  },
} as const satisfies Record<string, DeepPartial<IdcConfig>>;

export type PresetName = keyof typeof PRESETS;

export function presetConfig(name: PresetName): IdcConfig {
  return validateConfig(deepMerge(defaultConfig(), PRESETS[name]));
}

function prettyJson(v: unknown, indent = ''): string {
  if (Array.isArray(v)) {
    if (v.every((x) => x === null || typeof x !== 'object')) return `[${v.map((x) => JSON.stringify(x)).join(', ')}]`;
    const inner = indent + '  ';
    return `[\n${v.map((x) => inner + prettyJson(x, inner)).join(',\n')}\n${indent}]`;
  }
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v);
    if (!entries.length) return '{}';
    const inner = indent + '  ';
    return `{\n${entries.map(([k, x]) => `${inner}${JSON.stringify(k)}: ${prettyJson(x, inner)}`).join(',\n')}\n${indent}}`;
  }
  return JSON.stringify(v);
}

/**
 * Reads `configPath` (must exist), else `<cwd>/idc.config.json` when present, else defaults only;
 * deep-merges `overrides` over it and validates the result. Path overrides come from the command
 * line, so relative ones resolve against `cwd`, not the config file's folder.
 */
export async function loadConfig(opts: { cwd: string; configPath?: string; overrides?: DeepPartial<IdcConfig> }): Promise<LoadedConfig> {
  const cwd = resolve(opts.cwd);
  let file: string | undefined;
  let text: string | undefined;
  if (opts.configPath !== undefined) {
    file = resolve(cwd, expandHome(opts.configPath));
    text = await readConfigText(file, true);
  } else {
    const candidate = join(cwd, CONFIG_FILE_NAME);
    text = await readConfigText(candidate, false);
    if (text !== undefined) file = candidate;
  }
  const fromFile = text === undefined ? {} : parseJsonc(text, file);
  // Merging overrides into [] or null would silently drop it: refuse it on its own first.
  if (text !== undefined && !isPlainObject(fromFile)) validateWithSource(fromFile, file, file);
  const overrides = opts.overrides ? resolveOverridePaths(opts.overrides, cwd) : undefined;
  const merged = overrides ? deepMerge(fromFile, overrides) : fromFile;
  const source = overrides && hasDefined(overrides) ? `${file ?? 'the default settings'} (with command-line options)` : file;
  const config = validateWithSource(merged, file, source);
  // What the file held and the options set, before the schema's defaults fill the rest.
  const explicit = new Map<string, 'file' | 'option'>();
  for (const p of leafPaths(fromFile)) explicit.set(p, 'file');
  for (const p of leafPaths(overrides)) explicit.set(p, 'option');
  return { config, file, baseDir: file ? dirname(file) : cwd, explicit };
}

async function readConfigText(file: string, required: boolean): Promise<string | undefined> {
  try {
    return await fsp.readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      if (!required) return undefined;
      throw new IdcError(`Config file ${file} not found.`, `Check the path, or leave it out to use ./${CONFIG_FILE_NAME} (or the defaults).`, 'CONFIG_NOT_FOUND');
    }
    if (code === 'EISDIR') throw new IdcError(`${file} is a folder, not a config file.`, `Point to the ${CONFIG_FILE_NAME} file inside it.`, 'CONFIG_NOT_FOUND');
    if (code === 'EACCES' || code === 'EPERM') throw new IdcError(`No permission to read ${file}.`, 'Fix its permissions or choose another config file.', code);
    throw e;
  }
}

/** Relative paths resolve against the config file's folder (cwd when there is none); "~" is the home folder. */
export function resolveConfigPath(loaded: LoadedConfig, p: string): string {
  return resolve(loaded.baseDir, expandHome(p));
}

function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') || p.startsWith('~\\') ? join(homedir(), p.slice(1)) : p;
}

function resolveOverridePaths(overrides: DeepPartial<IdcConfig>, cwd: string): DeepPartial<IdcConfig> {
  const paths = overrides.paths;
  if (!isPlainObject(paths)) return overrides;
  const resolved: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(paths)) resolved[k] = typeof v === 'string' && v !== '' ? resolve(cwd, expandHome(v)) : v;
  return { ...overrides, paths: resolved as DeepPartial<IdcConfig['paths']> };
}

function hasDefined(v: unknown): boolean {
  if (!isPlainObject(v)) return v !== undefined;
  return Object.values(v).some(hasDefined);
}

/** Objects merge key by key; arrays and scalars replace; undefined (an absent flag) keeps the base. */
function deepMerge(base: unknown, over: unknown): unknown {
  if (over === undefined) return base;
  if (isPlainObject(over)) {
    const out: Record<string, unknown> = {};
    if (isPlainObject(base)) for (const [k, v] of Object.entries(base)) setOwn(out, k, v);
    for (const [k, v] of Object.entries(over)) {
      const merged = deepMerge(Object.hasOwn(out, k) ? out[k] : undefined, v);
      if (merged !== undefined) setOwn(out, k, merged);
    }
    return out;
  }
  return cloneJson(over);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Own data property even for "__proto__", so parsed input can't touch prototypes. */
function setOwn(o: Record<string, unknown>, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

function cloneJson(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(cloneJson);
  if (isPlainObject(v)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) setOwn(out, k, cloneJson(x));
    return out;
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// JSON with comments

/**
 * Parses JSON that may contain // and /* *\/ comments and trailing commas (what VS Code accepts
 * in its own settings files). A real parser rather than a comment stripper plus JSON.parse so that
 * every syntax error carries a line:column (Node 20's JSON.parse messages often have no position).
 */
export function parseJsonc(text: string, file = 'JSON'): unknown {
  let pos = text.charCodeAt(0) === 0xfeff ? 1 : 0;

  const fail = (reason: string, at = pos): never => {
    let line = 1;
    let lineStart = 0;
    for (let i = 0; i < at && i < text.length; i++) {
      if (text.charCodeAt(i) === 10) { line++; lineStart = i + 1; }
    }
    throw new JsoncParseError(file, at, line, at - lineStart + 1, reason);
  };

  const describe = (at: number): string => {
    if (at >= text.length) return 'end of file';
    const c = text[at];
    return c === '\n' || c === '\r' ? 'end of line' : `'${c}'`;
  };

  const skip = (): void => {
    for (;;) {
      const c = text.charCodeAt(pos);
      if (c === 32 || c === 9 || c === 10 || c === 13) pos++;
      else if (c === 47 && text.charCodeAt(pos + 1) === 47) {
        pos += 2;
        while (pos < text.length && text.charCodeAt(pos) !== 10 && text.charCodeAt(pos) !== 13) pos++;
      } else if (c === 47 && text.charCodeAt(pos + 1) === 42) {
        const end = text.indexOf('*/', pos + 2);
        if (end < 0) fail('Unterminated /* comment.');
        pos = end + 2;
      } else return;
    }
  };

  const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
  const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

  const parseString = (): string => {
    STRING.lastIndex = pos;
    const m = STRING.exec(text);
    if (!m) {
      // Find what broke it, to point at the exact character.
      let i = pos + 1;
      while (i < text.length) {
        const c = text.charCodeAt(i);
        if (c === 34) break;
        if (c < 0x20) fail(c === 10 || c === 13 ? 'Unterminated string (strings cannot span lines).' : 'Control character in string; escape it.', i);
        if (c === 92) {
          if (!/^(?:["\\/bfnrt]|u[0-9a-fA-F]{4})/.test(text.slice(i + 1, i + 6))) fail('Invalid escape sequence in string.', i);
          i += text[i + 1] === 'u' ? 6 : 2;
          continue;
        }
        i++;
      }
      fail('Unterminated string.', pos);
    }
    pos += m![0].length;
    return JSON.parse(m![0]) as string;
  };

  const parseValue = (): unknown => {
    skip();
    const c = text[pos];
    if (c === '{') return parseObject();
    if (c === '[') return parseArray();
    if (c === '"') return parseString();
    if (c === '-' || (c >= '0' && c <= '9')) {
      NUMBER.lastIndex = pos;
      const m = NUMBER.exec(text);
      if (!m || /[\w.]/.test(text[pos + m[0].length] ?? '')) fail('Invalid number.');
      pos += m![0].length;
      return Number(m![0]);
    }
    for (const [word, value] of [['true', true], ['false', false], ['null', null]] as const) {
      if (text.startsWith(word, pos) && !/[\w$]/.test(text[pos + word.length] ?? '')) {
        pos += word.length;
        return value;
      }
    }
    if (c === "'") return fail("Strings must use double quotes (\").");
    if (c === undefined) return fail('Unexpected end of file; a value was expected.');
    return fail(`Unexpected ${describe(pos)}; a value was expected.`);
  };

  const parseObject = (): Record<string, unknown> => {
    const obj: Record<string, unknown> = {};
    const keys = new Set<string>();
    pos++;
    skip();
    if (text[pos] === '}') { pos++; return obj; }
    for (;;) {
      if (text[pos] !== '"') {
        fail(text[pos] === "'" ? 'Property names must use double quotes (").' : /[\w$]/.test(text[pos] ?? '') ? 'Property names must be in double quotes.' : `Unexpected ${describe(pos)}; a property name in double quotes was expected.`);
      }
      const keyAt = pos;
      const key = parseString();
      if (keys.has(key)) fail(`Duplicate property "${key}".`, keyAt);
      keys.add(key);
      skip();
      if (text[pos] !== ':') fail(`Expected ':' after property name "${key}", found ${describe(pos)}.`);
      pos++;
      setOwn(obj, key, parseValue());
      skip();
      if (text[pos] === ',') {
        pos++;
        skip();
        if (text[pos] === '}') { pos++; return obj; }
        continue;
      }
      if (text[pos] === '}') { pos++; return obj; }
      fail(pos >= text.length ? "Unexpected end of file; missing '}'." : `Expected ',' or '}' after the value of "${key}", found ${describe(pos)}.`);
    }
  };

  const parseArray = (): unknown[] => {
    const arr: unknown[] = [];
    pos++;
    skip();
    if (text[pos] === ']') { pos++; return arr; }
    for (;;) {
      arr.push(parseValue());
      skip();
      if (text[pos] === ',') {
        pos++;
        skip();
        if (text[pos] === ']') { pos++; return arr; }
        continue;
      }
      if (text[pos] === ']') { pos++; return arr; }
      fail(pos >= text.length ? "Unexpected end of file; missing ']'." : `Expected ',' or ']' in array, found ${describe(pos)}.`);
    }
  };

  skip();
  if (pos >= text.length) fail('The file is empty; it should hold a JSON object such as {}.');
  const value = parseValue();
  skip();
  if (pos < text.length) fail(`Unexpected ${describe(pos)} after the end of the JSON value.`);
  return value;
}
