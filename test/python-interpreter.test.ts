import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createMessageConnection, IPCMessageReader, IPCMessageWriter, type MessageConnection } from 'vscode-jsonrpc/node';
import { editorPython, PYTHON_EXTENSION_ID, type ExtensionLike, type PythonEnvironmentsApi } from '../src/extension/python-interpreter';
import * as H from '../src/protocol/job-host';
import { tempDir } from './helpers/fixtures';

// ---------------------------------------------------------------- the extension side (a fake ms-python.python)

function fakeExtension(api: PythonEnvironmentsApi | undefined, opts: { active?: boolean; activate?: () => Promise<unknown> } = {}) {
  const asked: string[] = [];
  let activated = 0;
  const ext: ExtensionLike = {
    isActive: opts.active ?? false,
    exports: opts.active ? api : undefined,
    activate: opts.activate ?? (async () => { activated++; return api; }),
  };
  const getExtension = (id: string) => { asked.push(id); return ext; };
  return { getExtension, asked, activations: () => activated };
}

function environments(active: { id: string; path: string } | undefined, executable: string | undefined, seen: unknown[] = []): PythonEnvironmentsApi {
  return {
    environments: {
      getActiveEnvironmentPath(resource) { seen.push(resource); return active; },
      async resolveEnvironment(env) {
        assert.deepEqual(env, active, 'resolves the active environment');
        return executable === undefined ? undefined : { executable: { uri: { fsPath: executable } } };
      },
    },
  };
}

describe("VS Code's Python interpreter", () => {
  test('not installed: none, and says so', async () => {
    const r = await editorPython(() => undefined);
    assert.equal(r.python, undefined);
    assert.match(r.note ?? '', /ms-python\.python\) is not installed/);
  });

  test('activates the extension, asks for the folder\'s active environment and returns its executable', async () => {
    const seen: unknown[] = [];
    const folder = { fsPath: '/ws' };
    const f = fakeExtension(environments({ id: 'venv', path: '/ws/.venv' }, '/ws/.venv/bin/python', seen));
    const r = await editorPython(f.getExtension, folder);
    assert.deepEqual(r, { python: '/ws/.venv/bin/python' });
    assert.deepEqual(f.asked, [PYTHON_EXTENSION_ID]);
    assert.equal(f.activations(), 1);
    assert.deepEqual(seen, [folder]);
  });

  test('an active extension is not activated again', async () => {
    const f = fakeExtension(environments({ id: 'sys', path: '/usr/bin/python3' }, '/usr/bin/python3'), { active: true });
    assert.equal((await editorPython(f.getExtension)).python, '/usr/bin/python3');
    assert.equal(f.activations(), 0);
  });

  test('an environment path that is an executable is used when it does not resolve; a bare folder is not', async () => {
    assert.equal((await editorPython(fakeExtension(environments({ id: 'x', path: '/opt/py/bin/python3.12' }, undefined)).getExtension)).python, '/opt/py/bin/python3.12');
    const r = await editorPython(fakeExtension(environments({ id: 'conda', path: '/opt/conda/envs/empty' }, undefined)).getExtension);
    assert.equal(r.python, undefined);
    assert.match(r.note ?? '', /\/opt\/conda\/envs\/empty has no Python executable/);
  });

  test('no interpreter selected, an old extension without the API, an API that throws, one that hangs', async () => {
    assert.match((await editorPython(fakeExtension(environments(undefined, undefined)).getExtension)).note ?? '', /no Python interpreter is selected/);
    assert.match((await editorPython(fakeExtension({}).getExtension)).note ?? '', /has no environments API/);
    const throwing: PythonEnvironmentsApi = { environments: { getActiveEnvironmentPath() { throw new Error('boom'); }, resolveEnvironment: async () => undefined } };
    assert.match((await editorPython(fakeExtension(throwing).getExtension)).note ?? '', /the Python extension failed: boom/);
    const hung = fakeExtension(undefined, { activate: () => new Promise(() => {}) });
    const r = await editorPython(hung.getExtension, undefined, 50);
    assert.equal(r.python, undefined);
    assert.match(r.note ?? '', /activating the Python extension did not answer within 0\.05 s/);
  });
});

// ---------------------------------------------------------------- the job process uses it (sources, over IPC)

describe('the job process takes the interpreter sent with the job', () => {
  let child: ChildProcess | undefined;
  let conn: MessageConnection | undefined;
  after(() => { conn?.dispose(); child?.kill(); });

  function host(): MessageConnection {
    if (conn) return conn;
    child = fork(resolve(__dirname, '../src/server/server.ts'), [H.JOB_HOST_ARG], { execArgv: ['--import', 'tsx'], silent: true });
    child.stdout!.resume();
    child.stderr!.resume();
    conn = createMessageConnection(new IPCMessageReader(child), new IPCMessageWriter(child));
    conn.listen();
    return conn;
  }

  test('a train job with engine.backend "torch" and no engine.python tries VS Code\'s interpreter, and says so', async () => {
    const ws = tempDir();
    writeFileSync(join(ws, 'idc.config.json'), JSON.stringify({ engine: { backend: 'torch' } }));
    const r = await host().sendRequest(H.hostRunJob, { request: { kind: 'train', python: '/nonexistent/venv/bin/python' }, folder: ws, settings: {}, cancelFile: join(ws, 'cancel') });
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.equal(r.error.code, 'BACKEND_UNAVAILABLE');
    assert.match(r.error.message, /\/nonexistent\/venv\/bin\/python was not found .*\(Python selected in VS Code's Python extension\)/);
    assert.match(r.error.hint ?? '', /engine\.python/);
  });

  test('engine.python in the config wins over it', async () => {
    const ws = tempDir();
    writeFileSync(join(ws, 'idc.config.json'), JSON.stringify({ engine: { backend: 'torch', python: '/nonexistent/configured/python' } }));
    const r = await host().sendRequest(H.hostRunJob, { request: { kind: 'train', python: '/nonexistent/venv/bin/python' }, folder: ws, settings: {}, cancelFile: join(ws, 'cancel') });
    assert.equal(r.ok, false);
    if (!r.ok) assert.match(r.error.message, /\/nonexistent\/configured\/python was not found .*\(Python set by engine\.python\)/);
  });

  test('Check GPU Setup names the interpreter it was sent and the folder\'s engine.python over it', async () => {
    const ws = tempDir();
    const sent = await host().sendRequest(H.hostGpuReport, { folder: ws, python: '/nonexistent/venv/bin/python' });
    assert.match(sent, /✗ the Python interpreter \/nonexistent\/venv\/bin\/python was not found .*\(Python selected in VS Code's Python extension\)/);
    writeFileSync(join(ws, 'idc.config.json'), JSON.stringify({ engine: { python: '/nonexistent/configured/python' } }));
    const configured = await host().sendRequest(H.hostGpuReport, { folder: ws, python: '/nonexistent/venv/bin/python' });
    assert.match(configured, /\/nonexistent\/configured\/python was not found .*\(Python set by engine\.python\)/);
  });

  test('Select Backend\'s torch entry uses the same order', async () => {
    const ws = tempDir();
    const sent = await host().sendRequest(H.hostProbeTorch, { folder: ws, python: '/nonexistent/venv/bin/python' });
    assert.equal(sent.available, false);
    assert.match(sent.reason ?? '', /\/nonexistent\/venv\/bin\/python was not found .*selected in VS Code's Python extension/);
    writeFileSync(join(ws, 'idc.config.json'), JSON.stringify({ engine: { python: '/nonexistent/configured/python' } }));
    const configured = await host().sendRequest(H.hostProbeTorch, { folder: ws, python: '/nonexistent/venv/bin/python' });
    assert.match(configured.reason ?? '', /\/nonexistent\/configured\/python was not found .*set by engine\.python/);
  });
});
