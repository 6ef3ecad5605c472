/**
 * Reading a cross-validation's files (evals/<id>/cv.json, its fold runs) without TF.js: the panels,
 * the report and the language server use this; cv.ts (which trains) writes them.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isRunId } from '../run-id';

/** cv.json: the folds (patient ids) and the settings they were trained with, so a rerun resumes the same experiment. */
export interface CvDefinition { version: 1; id: string; folds: string[][]; warnings: string[]; seed: number; manifestHash: string; configHash: string; createdAt: string }

/** Where a cross-validation's pooled evaluation lives: beside other models' evaluations, so every panel reads it. */
export function cvDir(outputDir: string, id: string): string {
  return join(outputDir, 'evals', id);
}

export const foldRunId = (id: string, fold: number): string => `${id}-fold${fold + 1}`;

/**
 * runs/<fold run>/cv-fold.json: written by the cross-validation before anything else in the fold's
 * folder, so a rerun resumes only folds it created itself, never a plain run that shares the name.
 */
export interface CvFoldMarker { version: 1; cv: string; fold: number; cvCreatedAt: string }
export const CV_FOLD_FILE = 'cv-fold.json';

export function readCvFoldMarker(runDir: string): CvFoldMarker | undefined {
  try {
    const m = JSON.parse(readFileSync(join(runDir, CV_FOLD_FILE), 'utf8')) as CvFoldMarker;
    return m && typeof m.cv === 'string' && typeof m.fold === 'number' && typeof m.cvCreatedAt === 'string' ? m : undefined;
  } catch {
    return undefined;
  }
}

/** evals/<id>/cv.json; undefined when there is none or it cannot be read. */
export function readCvDefinition(outputDir: string, id: string): CvDefinition | undefined {
  if (!isRunId(id)) return undefined;
  try {
    const def = JSON.parse(readFileSync(join(cvDir(outputDir, id), 'cv.json'), 'utf8')) as CvDefinition;
    return def && Array.isArray(def.folds) && def.folds.every(Array.isArray) ? { ...def, id, warnings: Array.isArray(def.warnings) ? def.warnings : [] } : undefined;
  } catch {
    return undefined;
  }
}

/** Every cross-validation of the output folder, oldest first. */
export function listCrossValidations(outputDir: string): CvDefinition[] {
  const dir = join(outputDir, 'evals');
  if (!existsSync(dir)) return [];
  const out: CvDefinition[] = [];
  for (const id of readdirSync(dir)) {
    const def = readCvDefinition(outputDir, id);
    if (def) out.push(def);
  }
  return out.sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.id < b.id ? -1 : 1));
}

/** The cross-validation a run is a fold of (`<id>-fold<i>`, with evals/<id>/cv.json), and its 0-based fold. */
export function cvOfRun(outputDir: string, runId: string): { def: CvDefinition; fold: number } | undefined {
  const m = /^(.+)-fold(\d+)$/.exec(runId);
  if (!m) return undefined;
  const def = readCvDefinition(outputDir, m[1]);
  const fold = Number(m[2]) - 1;
  return def && fold >= 0 && fold < def.folds.length ? { def, fold } : undefined;
}
