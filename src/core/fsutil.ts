import { promises as fsp, appendFileSync, writeFileSync, renameSync, mkdirSync, openSync, fsyncSync, closeSync, rmSync, statSync, existsSync, fstatSync, readSync, lstatSync, readlinkSync, realpathSync, constants, type Stats } from 'node:fs';
import { dirname, basename, join, resolve, relative, isAbsolute, sep } from 'node:path';
import { randomBytes } from 'node:crypto';
import { IdcError } from './errors';

function tempPathFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/**
 * Writes a file so that readers see either the old or the new content, never a torn one:
 * temp file in the same folder, fsync, rename. A failed write (disk full …) leaves the old file.
 */
export async function writeFileAtomic(target: string, data: string | Uint8Array): Promise<void> {
  // On failure the sync helper retries and explains (a read-only disk, no permission).
  await fsp.mkdir(dirname(target), { recursive: true }).catch(() => mkdirpOrExplain(dirname(target)));
  const tmp = tempPathFor(target);
  try {
    const fh = await fsp.open(tmp, 'w');
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, target);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw wrapWriteError(e, target);
  }
}

export function writeFileAtomicSync(target: string, data: string | Uint8Array): void {
  mkdirpOrExplain(dirname(target));
  const tmp = tempPathFor(target);
  try {
    writeFileSync(tmp, data);
    const fd = openSync(tmp, 'r+');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, target);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw wrapWriteError(e, target);
  }
}

export async function writeJsonAtomic(target: string, value: unknown): Promise<void> {
  await writeFileAtomic(target, JSON.stringify(value, null, 2) + '\n');
}

/** mkdir -p whose failure (read-only file system, no permission, disk full) is an IdcError naming the folder. */
export function mkdirpOrExplain(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    // Node's recursive mkdir says ENOENT when a missing parent cannot be made (read-only, no
    // permission): make them one at a time to get the real reason.
    throw wrapWriteError((e as NodeJS.ErrnoException).code === 'ENOENT' ? mkdirOneByOne(dir) ?? e : e, dir);
  }
}

function mkdirOneByOne(dir: string): unknown {
  const missing: string[] = [];
  for (let d = resolve(dir); !existsSync(d) && dirname(d) !== d; d = dirname(d)) missing.unshift(d);
  for (const d of missing) {
    try { mkdirSync(d); } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'EEXIST') return e; }
  }
  return undefined;
}

/** appendFileSync whose failure is explained as the atomic writes' is. */
export function appendFileSyncExplained(file: string, data: string): void {
  try {
    appendFileSync(file, data);
  } catch (e) {
    throw wrapWriteError(e, file);
  }
}

/** A failed write as the user should see it (read-only, no permission, disk full); anything else unchanged. */
export function wrapWriteError(e: unknown, target: string): Error {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code === 'ENOSPC') return new IdcError(`Disk full while writing ${target}; the previous version is intact.`, 'Free some space and run the command again.', 'ENOSPC');
  if (code === 'EACCES' || code === 'EPERM') return new IdcError(`No permission to write ${target}.`, 'Choose an output folder you can write to (paths.output in idc.config.json or --out).', code);
  if (code === 'EROFS') return new IdcError(`${target} is on a read-only file system.`, 'Choose a writable output folder.', code);
  return e instanceof Error ? e : new Error(String(e));
}

/** Reads a text file; a missing one becomes the caller's error (which says how to create it). */
export async function readTextOr(file: string, missing: () => IdcError): Promise<string> {
  try {
    return await fsp.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw missing();
    throw e;
  }
}

export async function readJsonIfExists<T>(file: string): Promise<T | undefined> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new IdcError(`${file} is not valid JSON: ${(e as Error).message}`, 'Delete it to have it rebuilt, or fix it by hand.', 'BAD_JSON');
  }
}

/**
 * A key that changes whenever the file is rewritten (mtime, size, inode: atomic writes replace
 * the inode), for caches of parsed files; undefined when the file is missing.
 */
export function fileVersionKey(file: string): string | undefined {
  try {
    const s = statSync(file);
    return `${s.mtimeMs}:${s.size}:${s.ino}`;
  } catch {
    return undefined;
  }
}

/** Largest file read as a patch (patches are a few KB): a bound for stray big files, devices and zip bombs. */
export const MAX_PATCH_BYTES = 1 << 20;

function fileKind(st: Stats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  if (st.isDirectory()) return 'a folder';
  return 'not a file';
}

/**
 * Reads a regular file (after symbolic links) of at most `maxBytes`, reading at most maxBytes + 1
 * bytes even if it grows meanwhile. A FIFO, device or folder, or a bigger file, throws an IdcError
 * whose message is the reason to show next to the file (codes NOT_REGULAR_FILE, FILE_TOO_LARGE);
 * file-system errors pass through. Opened non-blocking so a FIFO without a writer can't hang the
 * open. `scratch` is used when the file fits, so the result may alias it.
 */
export function readRegularFileSync(file: string, maxBytes = MAX_PATCH_BYTES, scratch?: Uint8Array): Buffer {
  const tooLarge = (what: string) => new IdcError(`too large for a patch (${what}; at most ${maxBytes})`, 'Remove it from the archive folder.', 'FILE_TOO_LARGE');
  const fd = openSync(file, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new IdcError(`not a regular file (${fileKind(st)})`, 'Replace it with the patch file or remove it.', 'NOT_REGULAR_FILE');
    if (st.size > maxBytes) throw tooLarge(`${st.size} bytes`);
    let buf = scratch && scratch.length > st.size ? scratch : new Uint8Array(st.size + 1);
    let n = 0;
    for (;;) {
      if (n === buf.length) {
        if (n > maxBytes) throw tooLarge(`over ${maxBytes} bytes`);
        const bigger = new Uint8Array(Math.min(buf.length * 2, maxBytes + 1));
        bigger.set(buf);
        buf = bigger;
      }
      const got = readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) break;
      n += got;
    }
    return Buffer.from(buf.buffer, buf.byteOffset, n);
  } finally {
    closeSync(fd);
  }
}

/**
 * The real path of `p`, which may not exist yet: the real path of its nearest existing ancestor
 * plus the rest (a dangling symbolic link is followed to where it points).
 */
export function realPathOf(p: string, depth = 0): string {
  const rest: string[] = [];
  for (let head = p; ; head = dirname(head)) {
    try {
      return join(realpathSync(head), ...rest);
    } catch {
      let link: string | undefined;
      try { if (lstatSync(head).isSymbolicLink()) link = readlinkSync(head); } catch { /* missing: go up */ }
      if (link !== undefined && depth < 40) return join(realPathOf(resolve(dirname(head), link), depth + 1), ...rest);
      if (dirname(head) === head) return p;
      rest.unshift(basename(head));
    }
  }
}

/**
 * Whether `p` (which may not exist yet) is the folder `dir` itself or lies inside it, by real paths,
 * so that a symbolic link (to `dir`, or into it) can't hide where output goes.
 */
export function placeIn(dir: string, p: string): 'same' | 'inside' | undefined {
  const rel = relative(realPathOf(dir), realPathOf(p));
  if (rel === '') return 'same';
  // ".." only as a whole segment: "..out" is a folder inside.
  return rel.split(sep)[0] !== '..' && !isAbsolute(rel) ? 'inside' : undefined;
}
