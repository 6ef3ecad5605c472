import { readdirSync, statSync, realpathSync, type Dirent } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import yauzl from 'yauzl';
import { isPatientDirName, notANumberReason, type Issue } from './layout';
import { isIdcError } from '../errors';
import { readRegularFileSync, MAX_PATCH_BYTES } from '../fsutil';
import { readZipCentralDirectory } from '../cache/zip-directory';
import { readZipSlots, packSlot, type ZipSlot } from '../cache/zip-read';

/** One file of the archive, wherever it lives (folder or zip). */
export interface ArchiveEntry {
  rel: string;
  parts: string[];
  /** Where a zip entry's bytes lie (fast path); absent for folders and yauzl-listed zips. */
  slot?: ZipSlot;
}

/** A read-only view of the archive: its files, the problems found while listing, and a reader. */
export interface ArchiveListing {
  kind: 'dir' | 'zip';
  root: string;
  entries: ArchiveEntry[];
  issues: Issue[];
  /** Changes when files are added, removed or renamed (a folder) or the zip file changes. */
  signature: string;
  read(entry: ArchiveEntry): Promise<Buffer>;
  close(): void;
}

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException)?.code;
}

function describeFsError(e: unknown): string {
  if (isIdcError(e)) return e.message; // readRegularFileSync's refusals are reasons already
  switch (errno(e)) {
    case 'EACCES': case 'EPERM': return 'unreadable: permission denied';
    case 'ELOOP': return 'symbolic link loop';
    case 'ENOENT': return 'broken symbolic link (target missing)';
    case 'EIO': return 'unreadable: I/O error';
    case 'ENXIO': return 'not a regular file (a socket or device)';
    default: return `unreadable: ${(e as Error).message}`;
  }
}

/** Reports patient folders that hold neither a 0/ nor a 1/ folder, and label folders under a non-numeric patient folder. */
function patientFolderIssues(dirs: Set<string>): Issue[] {
  const issues: Issue[] = [];
  const misnamed = new Set<string>();
  for (const d of dirs) {
    const parts = d.split('/');
    const name = parts[parts.length - 1];
    const parent = parts[parts.length - 2];
    const isLabelDir = (name === '0' || name === '1') && !dirs.has(`${d}/0`) && !dirs.has(`${d}/1`);
    if (isLabelDir && parent === undefined) {
      issues.push({ path: `${d}/`, severity: 'skipped', reason: 'label folder at the top of the archive (is this one patient\'s folder? point at the folder that holds the <patient>/ folders)' });
      continue;
    }
    if (isLabelDir && !isPatientDirName(parent)) {
      const p = parts.slice(0, -1).join('/');
      if (!misnamed.has(p)) { misnamed.add(p); issues.push({ path: `${p}/`, severity: 'skipped', reason: notANumberReason(parent) }); }
      continue;
    }
    if (!isPatientDirName(name) || (parent !== undefined && isPatientDirName(parent))) continue;
    if (!dirs.has(`${d}/0`) && !dirs.has(`${d}/1`)) {
      issues.push({ path: `${d}/`, severity: 'skipped', reason: 'patient folder has neither a 0/ nor a 1/ subfolder' });
    }
  }
  return issues;
}

/** `layout: false` (predict: any layout) leaves out the <patient>/<0|1>/ folder checks. */
export function listDirectory(root: string, opts: { layout?: boolean } = {}): ArchiveListing {
  const entries: ArchiveEntry[] = [];
  const issues: Issue[] = [];
  const dirs = new Set<string>();
  const hash = createHash('sha256');
  const visited = new Set<string>();

  const walk = (abs: string, parts: string[], ancestors: string[]): void => {
    let list: Dirent[];
    try {
      list = readdirSync(abs, { withFileTypes: true });
    } catch (e) {
      issues.push({ path: parts.join('/') + '/', severity: 'skipped', reason: `folder ${describeFsError(e)}` });
      return;
    }
    try {
      hash.update(`${parts.join('/')}\0${statSync(abs).mtimeMs}\n`);
    } catch { /* unreadable metadata only weakens change detection */ }
    list.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const d of list) {
      const childParts = [...parts, d.name];
      const rel = childParts.join('/');
      const childAbs = join(abs, d.name);
      let isDir = d.isDirectory();
      if (d.isSymbolicLink()) {
        try {
          isDir = statSync(childAbs).isDirectory();
        } catch (e) {
          issues.push({ path: rel, severity: 'skipped', reason: describeFsError(e) });
          continue;
        }
        if (isDir) {
          const real = realpathSync(childAbs);
          if (ancestors.includes(real)) {
            issues.push({ path: rel, severity: 'skipped', reason: 'symbolic link loop (points back to a folder that contains it)' });
            continue;
          }
          if (visited.has(real)) {
            issues.push({ path: rel, severity: 'skipped', reason: 'symbolic link to a folder that was already scanned' });
            continue;
          }
        }
      }
      if (isDir) {
        dirs.add(rel);
        const real = realpathSync(childAbs);
        visited.add(real);
        walk(childAbs, childParts, [...ancestors, real]);
      } else {
        entries.push({ rel, parts: childParts });
        hash.update(rel + '\n');
      }
    }
  };
  const realRoot = realpathSync(root);
  visited.add(realRoot);
  walk(root, [], [realRoot]);
  if (opts.layout !== false) issues.push(...patientFolderIssues(dirs));
  return {
    kind: 'dir', root, entries, issues, signature: `dir:${hash.digest('hex').slice(0, 24)}`,
    read: async (e) => readRegularFileSync(join(root, ...e.parts)),
    close: () => {},
  };
}

interface ZipEntryRef extends ArchiveEntry {
  entry: yauzl.Entry;
}

function openZip(file: string): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) => {
    yauzl.open(file, { lazyEntries: true, autoClose: false, decodeStrings: false, validateEntrySizes: true, strictFileNames: false }, (err, zf) => (err ? reject(err) : resolve(zf!)));
  });
}

/** Names that could escape an extraction folder are never read, let alone written. */
function unsafeZipName(name: string): string | undefined {
  if (name.includes('\0')) return 'unsafe entry name (NUL byte)';
  if (/^([a-zA-Z]:)?[\\/]/.test(name)) return 'unsafe entry name (absolute path), never extracted';
  if (name.split(/[\\/]/).includes('..')) return 'unsafe entry name (contains ..), never extracted';
  return undefined;
}

/** Classifies one zip entry name; pushes it to `entries` or an issue, and records its folders. */
function addZipEntry(name: string, externalAttributes: number, size: number, entries: ArchiveEntry[], issues: Issue[], dirs: Set<string>, extra: Partial<ArchiveEntry> = {}): void {
  const unsafe = unsafeZipName(name);
  const isLink = ((externalAttributes >>> 16) & 0o170000) === 0o120000;
  if (unsafe) { issues.push({ path: name, severity: 'skipped', reason: unsafe }); return; }
  if (isLink) { issues.push({ path: name, severity: 'skipped', reason: 'symbolic link entry in the zip (not followed)' }); return; }
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  const isDir = name.endsWith('/');
  for (let i = 1; i < parts.length + (isDir ? 1 : 0); i++) dirs.add(parts.slice(0, i).join('/'));
  if (isDir) return;
  if (size > MAX_PATCH_BYTES) issues.push({ path: name, severity: 'skipped', reason: `too large for a patch (${size} bytes)` });
  else entries.push({ rel: parts.join('/'), parts, ...extra });
}

/**
 * Lists a zip from its central directory in one read, and reads entries with positioned reads;
 * yauzl (one callback per entry, ~1,000 entries/s on the full archive) is the fallback for zips
 * that parser refuses.
 */
export async function listZip(file: string): Promise<ArchiveListing> {
  const { size, mtimeMs } = statSync(file);
  let records;
  try {
    records = readZipCentralDirectory(file);
  } catch {
    return listZipWithYauzl(file, size, mtimeMs);
  }
  const entries: ArchiveEntry[] = [];
  const issues: Issue[] = [];
  const dirs = new Set<string>();
  for (const r of records) addZipEntry(r.name, r.externalAttributes, r.slot.uncompressedSize, entries, issues, dirs, { slot: r.slot });
  issues.push(...patientFolderIssues(dirs));
  return {
    kind: 'zip', root: file, entries, issues, signature: `zip:${size}:${mtimeMs}`,
    read: async (e) => {
      const packed: number[] = [];
      packSlot(e.slot!, packed);
      const [bytes] = readZipSlots(file, packed, 1);
      if (typeof bytes === 'string') throw new Error(bytes);
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    },
    close: () => {},
  };
}

/** The yauzl listing: the fallback for zips the one-read parser refuses (and the reference in its tests). */
export async function listZipWithYauzl(file: string, size = statSync(file).size, mtimeMs = statSync(file).mtimeMs): Promise<ArchiveListing> {
  const zf = await openZip(file);
  const entries: ZipEntryRef[] = [];
  const issues: Issue[] = [];
  const dirs = new Set<string>();
  await new Promise<void>((resolve, reject) => {
    zf.on('error', reject);
    zf.on('end', () => resolve());
    zf.on('entry', (entry: yauzl.Entry) => {
      const raw = entry.fileName as unknown as Buffer;
      // Bit 11 marks UTF-8 names; legacy names are CP437, which is ASCII for every valid patch name.
      const name = raw.toString((entry.generalPurposeBitFlag & 0x800) !== 0 ? 'utf8' : 'latin1');
      addZipEntry(name, entry.externalFileAttributes, entry.uncompressedSize, entries as ArchiveEntry[], issues, dirs, { entry } as Partial<ZipEntryRef>);
      zf.readEntry();
    });
    zf.readEntry();
  });
  issues.push(...patientFolderIssues(dirs));
  return {
    kind: 'zip', root: file, entries, issues, signature: `zip:${size}:${mtimeMs}`,
    read: (e) => readZipEntry(zf, (e as ZipEntryRef).entry),
    close: () => zf.close(),
  };
}

function readZipEntry(zf: yauzl.ZipFile, entry: yauzl.Entry): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    zf.openReadStream(entry, (err, stream) => {
      if (err) return reject(err);
      const chunks: Buffer[] = [];
      stream!.on('data', (c: Buffer) => chunks.push(c));
      stream!.on('error', reject);
      stream!.on('end', () => resolve(Buffer.concat(chunks)));
    });
  });
}

export { describeFsError };
