/** The archive's naming scheme: `<pid>/<0|1>/<pid>_idx5_x<X>_y<Y>_class<C>.png`. */

export const PATCH_SIZE = 50;

export type Label = 0 | 1;

export interface PatchName {
  /** File stem, the patch's id everywhere in the pipeline. */
  id: string;
  patient: string;
  x: number;
  y: number;
  label: Label;
}

const NAME_RE = /^(\d+)_idx5_x(\d+)_y(\d+)_class([01])\.png$/;
/** Unlabelled patches (idc predict): the class suffix is optional. */
const UNLABELLED_RE = /^(\d+)_idx5_x(\d+)_y(\d+)(?:_class([01]))?\.png$/i;

export function parsePatchName(fileName: string): PatchName | undefined {
  const m = NAME_RE.exec(fileName);
  if (!m) return undefined;
  return { id: fileName.slice(0, -4), patient: m[1], x: Number(m[2]), y: Number(m[3]), label: Number(m[4]) as Label };
}

export function parseUnlabelledName(fileName: string): (Omit<PatchName, 'label'> & { label?: Label }) | undefined {
  const m = UNLABELLED_RE.exec(fileName);
  if (!m) return undefined;
  return {
    id: fileName.slice(0, -4), patient: m[1], x: Number(m[2]), y: Number(m[3]),
    label: m[4] === undefined ? undefined : (Number(m[4]) as Label),
  };
}

export function patchFileName(patient: string, x: number, y: number, label: Label): string {
  return `${patient}_idx5_x${x}_y${y}_class${label}.png`;
}

/** The folder of the Kaggle zip that holds the second copy of the tree. */
export const DUPLICATE_TREE_DIR = 'IDC_regular_ps50_idx5';
