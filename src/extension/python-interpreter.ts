/**
 * The interpreter selected in VS Code's Python extension (ms-python.python), through its public
 * environments API (https://github.com/microsoft/vscode-python/wiki/Python-Environment-APIs).
 * The torch engine uses it when engine.python is empty. Only type imports here: the caller passes
 * vscode.extensions.getExtension, so tests drive it with a fake extension.
 */

export const PYTHON_EXTENSION_ID = 'ms-python.python';

/** What this reads of the extension's exports; anything else there is ignored. */
export interface PythonEnvironmentsApi {
  environments?: {
    getActiveEnvironmentPath(resource?: unknown): { id: string; path: string } | undefined;
    resolveEnvironment(env: { id: string; path: string } | string): Promise<{ executable?: { uri?: { fsPath: string } } } | undefined>;
  };
}

export interface ExtensionLike {
  readonly isActive: boolean;
  readonly exports: unknown;
  activate(): Thenable<unknown>;
}

export interface EditorPython {
  /** The executable, when the Python extension named one. */
  python?: string;
  /** Why there is none, for the log: not installed, no interpreter selected, an API it lacks … */
  note?: string;
}

function withTimeout<T>(p: Thenable<T>, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what} did not answer within ${ms / 1000} s`)), ms);
    p.then((v) => { clearTimeout(t); resolve(v); }, (e: unknown) => { clearTimeout(t); reject(e); });
  });
}

/**
 * The active interpreter for `resource` (a workspace folder's URI). Never throws: a missing or
 * broken Python extension means "none", and the server falls back to python3 on PATH.
 */
export async function editorPython(getExtension: (id: string) => ExtensionLike | undefined, resource?: unknown, timeoutMs = 5000): Promise<EditorPython> {
  const ext = getExtension(PYTHON_EXTENSION_ID);
  if (!ext) return { note: `the Python extension (${PYTHON_EXTENSION_ID}) is not installed` };
  try {
    // Activating it is what its API asks of callers; it may be slow the first time.
    const api = (ext.isActive ? ext.exports : await withTimeout(ext.activate(), timeoutMs, 'activating the Python extension')) as PythonEnvironmentsApi | undefined;
    const envs = api?.environments;
    if (!envs?.getActiveEnvironmentPath || !envs.resolveEnvironment) return { note: 'this version of the Python extension has no environments API' };
    const active = envs.getActiveEnvironmentPath(resource);
    if (!active?.path) return { note: 'no Python interpreter is selected in VS Code' };
    const resolved = await withTimeout(envs.resolveEnvironment(active), timeoutMs, 'resolving the Python environment');
    const exe = resolved?.executable?.uri?.fsPath;
    if (exe) return { python: exe };
    // An environment folder without a resolved executable (e.g. a conda prefix) cannot be run as is.
    return /python[\d.]*(\.exe)?$/i.test(active.path) ? { python: active.path } : { note: `the selected environment ${active.path} has no Python executable` };
  } catch (e) {
    return { note: `the Python extension failed: ${String((e as Error)?.message ?? e).split('\n')[0]}` };
  }
}
