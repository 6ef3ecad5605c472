import { parsePatchName, type PatchName } from '../naming';

/** A problem with one file or folder; nothing with an issue of severity 'skipped' reaches the manifest. */
export interface Issue {
  /** Relative to the archive root (or the zip entry name). */
  path: string;
  severity: 'skipped' | 'suspicious';
  reason: string;
}

const SYSTEM_FILES = new Set(['.DS_Store', 'Thumbs.db', 'desktop.ini']);
export const isPatientDirName = (name: string): boolean => /^\d+$/.test(name);
export const notANumberReason = (patientDir: string): string => `patient folder name '${patientDir}' is not a number`;

export type Placement = { ok: true; name: PatchName } | { ok: false; reason: string };

/**
 * Decides from its path alone whether a file is a patch: it must sit in `<pid>/<0|1>/`
 * and its name must agree with both folders.
 */
export function placeFile(parts: readonly string[]): Placement {
  const file = parts[parts.length - 1];
  const labelDir = parts[parts.length - 2];
  const patientDir = parts[parts.length - 3];
  if (SYSTEM_FILES.has(file) || parts.includes('__MACOSX')) return { ok: false, reason: 'operating-system metadata file' };
  if (file === '.idc-synth.json' && parts.length === 1) return { ok: false, reason: 'marker of an IDC Inspector synthetic archive' };
  const inLabelDir = patientDir !== undefined && isPatientDirName(patientDir) && (labelDir === '0' || labelDir === '1');
  const name = parsePatchName(file);
  if (!inLabelDir) {
    if (patientDir !== undefined && (labelDir === '0' || labelDir === '1')) return { ok: false, reason: notANumberReason(patientDir) };
    return { ok: false, reason: name ? 'patch outside a <patient>/<0|1>/ folder' : 'not a patch: outside any <patient>/<0|1>/ folder' };
  }
  if (!name) {
    return { ok: false, reason: /\.png$/i.test(file)
      ? 'file name does not match <patient>_idx5_x<X>_y<Y>_class<0|1>.png'
      : 'not a PNG file (expected a .png patch)' };
  }
  if (name.patient !== patientDir) return { ok: false, reason: `patient id in the name (${name.patient}) differs from its folder (${patientDir})` };
  if (String(name.label) !== labelDir) return { ok: false, reason: `label folder ${labelDir}/ disagrees with the name's class${name.label}` };
  return { ok: true, name };
}
