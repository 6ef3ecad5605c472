import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createMessageConnection, IPCMessageReader, IPCMessageWriter, type MessageConnection } from 'vscode-jsonrpc/node';
import type { Diagnostic, PublishDiagnosticsParams } from 'vscode-languageserver-protocol';
import { parsePath, parseTree, problemSpan, setValueEdit } from '../src/server/jsonc-tree';
import { tempDir } from './helpers/fixtures';

const SERVER = resolve(__dirname, '../dist/server.js');

let ws: string;
let uri: string;
let child: ChildProcess;
let conn: MessageConnection;
let version = 0;
const published: PublishDiagnosticsParams[] = [];
const waiters: (() => void)[] = [];

before(async () => {
  if (!existsSync(SERVER)) spawnSync('npm', ['run', 'build'], { cwd: resolve(__dirname, '..'), stdio: 'inherit' });
  ws = tempDir('idc-diag-');
  mkdirSync(join(ws, 'raw'));
  uri = pathToFileURL(join(ws, 'idc.config.json')).href;
  child = fork(SERVER, ['--node-ipc', `--clientProcessId=${process.pid}`], { silent: true });
  child.stdout!.resume();
  child.stderr!.resume();
  conn = createMessageConnection(new IPCMessageReader(child), new IPCMessageWriter(child));
  conn.onNotification('textDocument/publishDiagnostics', (p: PublishDiagnosticsParams) => { published.push(p); for (const w of waiters.splice(0)) w(); });
  conn.onRequest(() => null);
  conn.listen();
  await conn.sendRequest('initialize', { processId: process.pid, rootUri: null, capabilities: {}, workspaceFolders: [{ uri: pathToFileURL(ws).href, name: 'ws' }] });
  await conn.sendNotification('initialized', {});
});

after(async () => {
  await Promise.race([conn.sendRequest('shutdown'), new Promise((r) => setTimeout(r, 3000))]).catch(() => {});
  await conn.sendNotification('exit').catch(() => {});
  conn.dispose();
  child.kill();
  rmSync(ws, { recursive: true, force: true });
});

function waitDiagnostics(pred: (p: PublishDiagnosticsParams) => boolean, timeoutMs = 60_000): Promise<Diagnostic[]> {
  return new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`no matching diagnostics; last: ${JSON.stringify(published.at(-1))}`)), timeoutMs);
    const check = (): void => {
      const hit = [...published].reverse().find((p) => p.uri === uri && pred(p));
      if (hit) { clearTimeout(timer); res(hit.diagnostics); } else waiters.push(check);
    };
    check();
  });
}

/** Opens the document the first time, then replaces its whole text; resolves with the diagnostics of that version. */
async function edit(text: string): Promise<Diagnostic[]> {
  version++;
  if (version === 1) await conn.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'jsonc', version, text } });
  else await conn.sendNotification('textDocument/didChange', { textDocument: { uri, version }, contentChanges: [{ text }] });
  const v = version;
  return waitDiagnostics((p) => p.version === v);
}

/** The text a diagnostic underlines. */
function underlined(text: string, d: Diagnostic): string {
  const lines = text.split('\n');
  if (d.range.start.line === d.range.end.line) return lines[d.range.start.line].slice(d.range.start.character, d.range.end.character);
  return [lines[d.range.start.line].slice(d.range.start.character), ...lines.slice(d.range.start.line + 1, d.range.end.line), lines[d.range.end.line].slice(0, d.range.end.character)].join('\n');
}

test('a syntax error is reported at its position, alone', async () => {
  const text = '{\n  // comments are fine\n  "split": {\n    "seed": 42,,\n  }\n}\n';
  const d = await edit(text);
  assert.equal(d.length, 1);
  assert.equal(d[0].severity, 1);
  assert.equal(d[0].source, 'idc');
  assert.equal(d[0].code, 'syntax');
  assert.deepEqual(d[0].range.start, { line: 3, character: 15 });
  assert.equal(underlined(text, d[0]), ',');
  assert.match(d[0].message, /Unexpected ','/);
});

test('schema problems sit on the offending value or key; semantic checks too', async () => {
  const text = [
    '{',
    '  "paths": { "archive": "no-such-archive", "output": "out" },',
    '  "splitt": {},',
    '  "split": {',
    '    "seed": "x",',
    '    "ratios": [0.5,',
    '               0.6, 0.1]',
    '  },',
    '  "train": { "epochs": 0 }',
    '}',
  ].join('\n');
  const d = await edit(text);
  const by = (re: RegExp): Diagnostic => {
    const hit = d.find((x) => re.test(x.message));
    assert.ok(hit, `no diagnostic matching ${re}: ${JSON.stringify(d.map((x) => x.message))}`);
    return hit;
  };
  const seed = by(/^split\.seed: must be a whole number/);
  assert.equal(underlined(text, seed), '"x"');
  assert.equal(seed.severity, 1);
  const ratios = by(/^split\.ratios: must sum to 1 \(they sum to 1\.2\)/);
  assert.equal(underlined(text, ratios), '[0.5,\n               0.6, 0.1]');
  assert.equal(underlined(text, by(/^splitt: unknown setting \(did you mean "split"\?\)/)), '"splitt"');
  assert.equal(underlined(text, by(/^train\.epochs: must be >= 1/)), '0');
  const archive = by(/^Archive not found: .*no-such-archive/);
  assert.equal(archive.severity, 2, 'a warning: the archive may come later');
  assert.equal(archive.code, 'archive-missing');
  assert.equal(underlined(text, archive), '"no-such-archive"');
  assert.equal(d.length, 5, JSON.stringify(d.map((x) => x.message)));
});

test('a backend this machine lacks is a warning with the probe\'s reason', async () => {
  const text = '{\n  "paths": { "archive": "raw" },\n  "engine": { "backend": "tensorflow-gpu" }\n}\n';
  await edit(text);
  // Probing runs in a job process; the diagnostics are republished when it answers.
  const d = await waitDiagnostics((p) => p.diagnostics.some((x) => x.code === 'backend-unavailable'));
  const b = d.find((x) => x.code === 'backend-unavailable')!;
  assert.equal(b.severity, 2);
  assert.equal(underlined(text, b), '"tensorflow-gpu"');
  assert.match(b.message, /tensorflow-gpu backend is not available on this machine: .*not installed/);
  assert.equal(d.length, 1);
});

test('fixed text clears the diagnostics; closing clears them too', async () => {
  assert.deepEqual(await edit('{\n  "paths": { "archive": "raw" },\n  "split": { "ratios": [0.8, 0.1, 0.1] }\n}\n'), []);
  await edit('{ "split": { "seed": "x" } }');
  await conn.sendNotification('textDocument/didClose', { textDocument: { uri } });
  assert.deepEqual(await waitDiagnostics((p) => p.version === undefined || p.version === null), []);
});

test('paths locate values, keys and the nearest ancestor; edits keep comments', () => {
  const text = '{\n  // keep me\n  "a": { "b": [1, {"c": true}] },\n  "weird key": 1,\n}';
  const root = parseTree(text)!;
  const at = (p: string, t: 'key' | 'value' = 'value') => { const s = problemSpan(root, parsePath(p), t); return [text.slice(s.span.offset, s.span.offset + s.span.length), s.exact]; };
  assert.deepEqual(at('a.b[1].c'), ['true', true]);
  assert.deepEqual(at('a.b[1].c', 'key'), ['"c"', true]);
  assert.deepEqual(at('"weird key"', 'key'), ['"weird key"', true]);
  assert.deepEqual(at('a.missing.x'), ['"a"', false]);
  assert.deepEqual(at('(root)'), ['{', true]);
  assert.equal(parseTree('{ "a": }'), undefined);

  const apply = (t: string, e: ReturnType<typeof setValueEdit>) => t.slice(0, e.offset) + e.newText + t.slice(e.offset + e.length);
  assert.equal(apply(text, setValueEdit(text, ['a', 'b', 0], 5)), text.replace('[1,', '[5,'));
  const added = apply(text, setValueEdit(text, ['engine', 'backend'], 'wasm'));
  assert.match(added, /\/\/ keep me/);
  assert.deepEqual(JSON.parse(added.replace(/\/\/.*$/m, '').replace(/,\s*}$/, '}')).engine, { backend: 'wasm' });
  const plain = '{\n  "paths": {}\n}';
  assert.equal(apply(plain, setValueEdit(plain, ['engine', 'backend'], 'cpu')), '{\n  "paths": {},\n  "engine": {\n    "backend": "cpu"\n  }\n}');
  assert.equal(apply(plain, setValueEdit(plain, ['paths', 'archive'], 'x')), '{\n  "paths": {\n    "archive": "x"\n  }\n}');
  assert.equal(apply('', setValueEdit('', ['engine', 'backend'], 'cpu')), '{\n  "engine": {\n    "backend": "cpu"\n  }\n}\n');
  assert.throws(() => setValueEdit('{ "engine": 3 }', ['engine', 'backend'], 'cpu'), /not an object/);
});
