import { join } from 'node:path';
import { PATCH_SIZE } from '../naming';
import { decodeRgb, placePatch, PatchError, PATCH_BYTES } from './pixels';
import { describeReadError } from './read-error';
import { readRegularFileSync } from '../fsutil';
import { readZipSlots } from './zip-read';

export { describeReadError };

/** One slice of a split to decode; plain data so it can cross to a worker thread. */
export interface DecodeJob {
  /** Folder archives: the decoder reads `<root>/<source>` itself (on the worker, off the main thread). */
  root?: string;
  sources: string[];
  /** Manifest width and height per item, flattened: a file that no longer matches has changed since organize. */
  sizes: number[];
  /** Zip archives: the decoder reads the entries itself, at these slots (see zip-read.ts; offset -1: not in the zip). */
  zip?: { path: string; slots: number[] };
  /** Zip archives read on the main thread instead (fallback): the entries' bytes back to back, and where each ends. */
  bytes?: Uint8Array;
  ends?: number[];
  /** Items that already failed on the main thread (not in the zip, unreadable), by index. */
  failed?: Record<number, string>;
  edge: 'resize' | 'pad';
}

export interface DecodeResult {
  /** The decoded patches that succeeded, back to back in job order (count x 7500 bytes). */
  data: Uint8Array;
  count: number;
  /** 1 where the item decoded; its patch is the next one in `data`. */
  ok: Uint8Array;
  failures: { i: number; reason: string }[];
}

export function decodeJob(job: DecodeJob): DecodeResult {
  const n = job.sources.length;
  const data = new Uint8Array(n * PATCH_BYTES);
  const ok = new Uint8Array(n);
  const failures: { i: number; reason: string }[] = [];
  let count = 0;
  const fromZip = job.zip ? readZipSlots(job.zip.path, job.zip.slots, n) : undefined;
  for (let i = 0; i < n; i++) {
    try {
      const pre = job.failed?.[i];
      if (pre !== undefined) throw new PatchError(pre);
      const z = fromZip?.[i];
      if (typeof z === 'string') throw new PatchError(z);
      const bytes = z ?? (job.bytes ? job.bytes.subarray(i === 0 ? 0 : job.ends![i - 1], job.ends![i]) : readSource(job.root!, job.sources[i]));
      const off = count * PATCH_BYTES;
      const img = decodeRgb(bytes, data.subarray(off, off + PATCH_BYTES));
      const w = job.sizes[2 * i], h = job.sizes[2 * i + 1];
      if (img.width !== w || img.height !== h) {
        throw new PatchError(`the image is ${img.width}x${img.height} but the manifest says ${w}x${h} (the file changed since organize)`);
      }
      if (w > PATCH_SIZE || h > PATCH_SIZE) throw new PatchError(`unexpected size ${w}x${h} (patches are at most ${PATCH_SIZE}x${PATCH_SIZE})`);
      placePatch(img, job.edge, data, off);
      ok[i] = 1;
      count++;
    } catch (e) {
      // Whatever a file's bytes do to the decoder, it is that file's failure, reported with its name.
      failures.push({ i, reason: e instanceof PatchError ? e.message : `cannot decode: ${(e as Error)?.message ?? String(e)}` });
    }
  }
  return { data, count, ok, failures };
}

/** Patches are a few KB; one reused buffer spares an allocation per file (bigger ones get their own). */
const readBuf = new Uint8Array(64 * 1024);

function readSource(root: string, source: string): Uint8Array {
  try {
    return readRegularFileSync(join(root, source), undefined, readBuf);
  } catch (e) {
    throw new PatchError(describeReadError(e));
  }
}
