/**
 * The status bar's text, without `vscode` so it is unit-tested. Its training part comes from
 * trainingProgressText, as the Runs tree's does: both say "epoch 3/20" from the same job event.
 */
import type * as P from '../protocol/protocol';
import { trainingProgressText } from '../core/views/sidebar';

const VERB: Record<P.JobKind, string> = {
  organize: 'organizing', split: 'splitting', train: 'training', resume: 'training', evaluate: 'evaluating',
  report: 'exporting the report', synth: 'generating', predict: 'scoring', gradcam: 'drawing Grad-CAM', cv: 'cross-validating',
};

export function formatEta(s: number): string {
  if (s < 60) return `${Math.max(1, Math.round(s))}s`;
  if (s < 3600) return `${Math.round(s / 60)}m`;
  return `${Math.floor(s / 3600)}h ${Math.round((s % 3600) / 60)}m`;
}

export type ServerState = 'starting' | 'up' | 'down';

/** "IDC: training epoch 3/20, ETA 2m · wasm"; "IDC: cross-validating fold 2/5, epoch 3/20, ETA 9m · wasm" */
export function statusText(s: P.StatusParams, p: P.JobProgressParams | undefined, server: ServerState): string {
  if (server === 'starting') return '$(loading~spin) IDC: starting';
  if (server === 'down') return '$(warning) IDC: server stopped';
  const backend = s.backend.replace(/^auto: /, '');
  if (s.state === 'idle' || !s.running) return `$(beaker) IDC: idle · ${backend}`;
  let t = `$(sync~spin) IDC: ${VERB[s.running.kind]}`;
  if (p && p.jobId === s.running.jobId) {
    const training = p.epoch !== undefined && p.phase.startsWith('train.');
    if (p.fold !== undefined) t += ` ${trainingProgressText({ fold: p.fold, folds: p.folds, ...(training ? { epoch: p.epoch, epochs: p.epochs } : {}) })}${training ? '' : ` — ${p.label}`}`;
    else if (p.epoch !== undefined) t += ` ${trainingProgressText({ epoch: p.epoch, epochs: p.epochs })}`;
    else if (p.percentage !== undefined) t += ` ${p.percentage}%`;
    else t += ` — ${p.label}${p.total ? ` ${Math.floor((100 * p.done) / p.total)}%` : ''}`;
    if (p.etaSeconds !== undefined) t += `, ETA ${formatEta(p.etaSeconds)}`;
  }
  if (s.queued.length) t += ` (+${s.queued.length} queued)`;
  return `${t} · ${backend}`;
}

/** What the Runs tree needs of the training job now running, from its last progress event. */
export function liveTraining(s: P.StatusParams, p: P.JobProgressParams | undefined): { runId?: string; epoch?: number; epochs?: number; fold?: number; folds?: number; cvId?: string } | undefined {
  const kind = s.running?.kind;
  if (kind !== 'train' && kind !== 'resume' && kind !== 'cv') return undefined;
  if (!p || p.jobId !== s.running!.jobId) return {};
  const training = p.epoch !== undefined && p.phase.startsWith('train.');
  return { runId: p.runId, ...(training ? { epoch: p.epoch, epochs: p.epochs } : {}), fold: p.fold, folds: p.folds, cvId: p.cv?.id };
}
