/**
 * Deleting a run folder (runs/<id>/) for the side bar's Delete: what it holds, in words for the
 * confirmation, and the deletion itself under the run's lock, so a job using the run (a training
 * in VS Code or in a terminal, an evaluation writing into it) makes it refuse instead of leaving
 * that job writing into a folder that is gone. No TF.js: the extension host runs this.
 */
import { existsSync, lstatSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { IdcError } from '../errors';
import { assertNotLocked, lockDir, type DirLock } from '../run-lock';
import { runIdProblem } from '../run-id';
import { cvOfRun } from '../cv/read';
import { EVAL_SPLITS } from '../evaluate/list';

export interface RunDeletionPlan {
  runId: string;
  dir: string;
  files: number;
  bytes: number;
  /** Its own evaluations (eval/<split>), deleted with it. */
  evaluations: string[];
  /** The cross-validation it is a fold of: resuming that retrains the fold. */
  cv?: { id: string; fold: number };
  /** Ensemble evaluations (evals/<name>/) that averaged it: kept, but no longer reproducible. */
  ensembles: string[];
}

function runDir(outputDir: string, runId: string): string {
  const problem = runIdProblem(runId);
  if (problem) throw new IdcError(`Run id ${problem}.`, 'Give the id of a run in runs/.', 'BAD_RUN_ID');
  const dir = join(outputDir, 'runs', runId);
  let isDir = false;
  try { isDir = lstatSync(dir).isDirectory(); } catch { /* missing */ }
  if (!isDir) throw new IdcError(`No run folder ${dir}.`, 'It may have been deleted already; refresh the Runs view.', 'NO_RUN');
  return dir;
}

/** Files and bytes under `dir`, symbolic links counted as themselves (never followed). */
function du(dir: string): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  const walk = (d: string): void => {
    let entries: string[];
    try { entries = readdirSync(d); } catch { return; }
    for (const name of entries) {
      const p = join(d, name);
      let st;
      try { st = lstatSync(p); } catch { continue; }
      if (st.isDirectory()) walk(p);
      else { files++; bytes += st.size; }
    }
  };
  walk(dir);
  return { files, bytes };
}

/** What deleting `runId` removes and what it leaves behind. Throws NO_RUN / BAD_RUN_ID. */
export function planRunDeletion(outputDir: string, runId: string): RunDeletionPlan {
  const dir = runDir(outputDir, runId);
  const evaluations = EVAL_SPLITS.filter((s) => existsSync(join(dir, 'eval', s)));
  const of = cvOfRun(outputDir, runId);
  const ensembles: string[] = [];
  const evals = join(outputDir, 'evals');
  let names: string[] = [];
  try { names = readdirSync(evals); } catch { /* none */ }
  for (const name of names) {
    for (const split of EVAL_SPLITS) {
      try {
        const m = JSON.parse(readFileSync(join(evals, name, split, 'metrics.json'), 'utf8')) as { ensemble?: unknown };
        if (Array.isArray(m.ensemble) && m.ensemble.includes(runId) && !ensembles.includes(name)) ensembles.push(name);
      } catch { /* no such evaluation */ }
    }
  }
  return { runId, dir, ...du(dir), evaluations: [...evaluations], cv: of && { id: of.def.id, fold: of.fold + 1 }, ensembles };
}

function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = bytes / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** The modal's question and its detail: exactly what goes and what stays. */
export function deletionText(plan: RunDeletionPlan): { message: string; detail: string } {
  const lines = [
    `This permanently deletes ${plan.dir} (${plan.files} file${plan.files === 1 ? '' : 's'}, ${size(plan.bytes)}): the run's checkpoints, final model, training history and config${plan.evaluations.length ? `, and its evaluation${plan.evaluations.length > 1 ? 's' : ''} on ${plan.evaluations.join(', ')}` : ''}.`,
  ];
  if (plan.cv) lines.push(`It is fold ${plan.cv.fold} of cross-validation ${plan.cv.id}: running that cross-validation again retrains this fold.`);
  if (plan.ensembles.length) lines.push(`Ensemble evaluation${plan.ensembles.length > 1 ? 's' : ''} ${plan.ensembles.join(', ')} averaged it and stay${plan.ensembles.length > 1 ? '' : 's'}, but cannot be rerun.`);
  lines.push('This cannot be undone.');
  return { message: `Delete run ${plan.runId}?`, detail: lines.join('\n\n') };
}

/**
 * Deletes runs/<runId>/ while holding its lock and its evaluations' locks: refused (RUN_LOCKED,
 * naming the process) while a live job holds any of them.
 */
export function deleteRun(outputDir: string, runId: string): void {
  const dir = runDir(outputDir, runId);
  const held: DirLock[] = [];
  try {
    // Evaluations first: taking the run's lock would not stop an evaluate writing into eval/<split>.
    for (const s of EVAL_SPLITS) {
      const evalDir = join(dir, 'eval', s);
      if (!existsSync(evalDir)) continue;
      assertNotLocked(evalDir, `evaluation ${runId}/${s}`);
      held.push(lockDir(evalDir, `evaluation ${runId}/${s}`));
    }
    held.push(lockDir(dir, `run ${runId}`));
    rmSync(dir, { recursive: true, force: true });
  } finally {
    for (const l of held) l.release();
  }
}
