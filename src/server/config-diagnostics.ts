import { dirname, resolve, sep } from 'node:path';
import { existsSync } from 'node:fs';
import { DiagnosticSeverity, type Diagnostic } from 'vscode-languageserver';
import { ConfigError, JsoncParseError, parseJsonc, resolveConfigPath, validateConfig, type LoadedConfig } from '../core/config';
import type { BackendProbe, ConcreteBackend } from '../core/engine/backends';
import { DIAGNOSTIC_SOURCE, type ConfigDiagnosticCode } from '../protocol/protocol';
import { lineIndex, parsePath, parseTree, problemSpan, tokenSpanAt, type JsonNode, type JsonPath, type Span } from './jsonc-tree';

const CONCRETE: readonly string[] = ['tensorflow-gpu', 'webgpu', 'tensorflow', 'wasm', 'cpu'];

export interface ConfigCheckEnv {
  /** The cached probe of a backend; undefined while it is still being probed. */
  backendProbe(name: ConcreteBackend): BackendProbe | undefined;
  exists(path: string): boolean;
}

export const realFs: Pick<ConfigCheckEnv, 'exists'> = { exists: existsSync };

/**
 * Everything wrong with an idc.config.json text, positioned on the text: a syntax error alone
 * (nothing else can be located), else every schema problem plus checks against this machine.
 */
export function configDiagnostics(text: string, file: string, env: ConfigCheckEnv): Diagnostic[] {
  const pos = lineIndex(text);
  const diag = (span: Span, message: string, severity: DiagnosticSeverity, code: ConfigDiagnosticCode): Diagnostic => ({
    range: { start: pos(span.offset), end: pos(span.offset + span.length) }, message, severity, code, source: DIAGNOSTIC_SOURCE,
  });

  let value: unknown;
  try {
    value = parseJsonc(text, file);
  } catch (e) {
    if (e instanceof JsoncParseError) return [diag(tokenSpanAt(text, e.offset), e.reason, DiagnosticSeverity.Error, 'syntax')];
    throw e;
  }
  const root = parseTree(text);
  // parseJsonc accepted it, so the scan should too; if not, point at the start rather than fail.
  const at = (path: JsonPath, target: 'key' | 'value'): { span: Span; exact: boolean } =>
    root ? problemSpan(root, path, target) : { span: { offset: 0, length: 0 }, exact: false };

  const out: Diagnostic[] = [];
  try {
    validateConfig(value, file);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    for (const p of e.problems) {
      const { span } = at(parsePath(p.path), p.message.startsWith('unknown setting') ? 'key' : 'value');
      out.push(diag(span, p.path === '(root)' ? p.message : `${p.path}: ${p.message}`, DiagnosticSeverity.Error, 'schema'));
    }
  }
  if (root) out.push(...machineChecks(value, file, root, env, diag));
  return out;
}

type Diag = (span: Span, message: string, severity: DiagnosticSeverity, code: ConfigDiagnosticCode) => Diagnostic;

/** What a schema can't know: files on this machine and the backends installed here. */
function machineChecks(value: unknown, file: string, root: JsonNode, env: ConfigCheckEnv, diag: Diag): Diagnostic[] {
  const out: Diagnostic[] = [];
  const v = value as { paths?: { archive?: unknown; output?: unknown }; engine?: { backend?: unknown } } | null;
  const spanOf = (path: JsonPath): Span => problemSpan(root, path, 'value').span;
  const base = { baseDir: dirname(resolve(file)) } as LoadedConfig;

  const archiveRaw = v?.paths?.archive;
  const archive = typeof archiveRaw === 'string' && archiveRaw !== '' ? resolveConfigPath(base, archiveRaw) : undefined;
  if (archive && !env.exists(archive)) {
    out.push(diag(spanOf(['paths', 'archive']),
      `Archive not found: ${archive}. Point paths.archive at the extracted Breast Histopathology Images folder or the downloaded .zip ("IDC: Generate Synthetic Dataset" can create a small one).`,
      DiagnosticSeverity.Warning, 'archive-missing'));
  }
  const outputRaw = v?.paths?.output;
  if (archive && typeof outputRaw === 'string' && outputRaw !== '') {
    const output = resolveConfigPath(base, outputRaw);
    if (output === archive || output.startsWith(archive.endsWith(sep) ? archive : archive + sep)) {
      out.push(diag(spanOf(['paths', 'output']), `The output folder lies inside the archive (${archive}); organize never writes into the archive. Choose a folder outside it.`,
        DiagnosticSeverity.Warning, 'output-in-archive'));
    }
  }

  const backend = v?.engine?.backend;
  if (typeof backend === 'string' && CONCRETE.includes(backend)) {
    const probe = env.backendProbe(backend as ConcreteBackend);
    if (probe && !probe.available) {
      out.push(diag(spanOf(['engine', 'backend']),
        `The ${backend} backend is not available on this machine: ${probe.reason ?? 'unknown reason'}.${probe.fix ? ` To use it: ${probe.fix}.` : ''} Training would fail; "auto" uses the fastest backend that works here.`,
        DiagnosticSeverity.Warning, 'backend-unavailable'));
    }
  }
  // No config field names a run id today (runs are picked per command), so there is nothing to check for runs.
  return out;
}
