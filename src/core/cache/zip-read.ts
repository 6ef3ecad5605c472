import { openSync, readSync, closeSync, fstatSync } from 'node:fs';
import { inflateRawSync, crc32 } from 'node:zlib';
import { describeReadError } from './read-error';

/** Where an entry lies in the zip, from its central directory record (listZip already parsed it). */
export interface ZipSlot {
  offset: number;
  compressedSize: number;
  uncompressedSize: number;
  method: number;
  crc: number;
  flags: number;
  nameLength: number;
}

export const SLOT_FIELDS = 7;

export function packSlot(s: ZipSlot, out: number[]): void {
  out.push(s.offset, s.compressedSize, s.uncompressedSize, s.method, s.crc, s.flags, s.nameLength);
}

/** Entries this close together are fetched with one read: a patient's patches sit side by side in the zip. */
const GAP = 64 * 1024;
const MAX_RUN = 8 * 1024 * 1024;
/** Room for the local header's extra field, which may differ from the central directory's. */
const EXTRA_SLACK = 256;

/**
 * Reads and inflates entries straight from the zip with positioned reads (native inflate, CRC
 * checked), so the worker threads do it instead of yauzl's per-entry streams on the main thread:
 * on the synthetic archive yauzl managed ~1,000 entries/s there.
 * Returns each entry's bytes, or the reason it could not be read.
 */
export function readZipSlots(path: string, slots: readonly number[], count: number): (Uint8Array | string)[] {
  const out: (Uint8Array | string)[] = new Array(count);
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    return out.fill(`cannot open the zip file: ${describeReadError(e)}`);
  }
  try {
    const fileSize = fstatSync(fd).size;
    const at = (i: number, k: number) => slots[i * SLOT_FIELDS + k];
    const order = Array.from({ length: count }, (_, i) => i).filter((i) => at(i, 0) >= 0).sort((a, b) => at(a, 0) - at(b, 0));
    let k = 0;
    while (k < order.length) {
      const start = at(order[k], 0);
      let end = Math.min(fileSize, start + 30 + at(order[k], 6) + EXTRA_SLACK + at(order[k], 1));
      const members = [order[k++]];
      while (k < order.length) {
        const i = order[k];
        const e = Math.min(fileSize, at(i, 0) + 30 + at(i, 6) + EXTRA_SLACK + at(i, 1));
        if (at(i, 0) - end > GAP || e - start > MAX_RUN) break;
        end = Math.max(end, e);
        members.push(i);
        k++;
      }
      let run: Uint8Array;
      try {
        run = readAt(fd, start, end - start);
      } catch (e) {
        for (const i of members) out[i] = describeReadError(e);
        continue;
      }
      for (const i of members) {
        try {
          out[i] = entryBytes(fd, run, start, i, at, fileSize);
        } catch (e) {
          out[i] = describeReadError(e);
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

function entryBytes(fd: number, run: Uint8Array, runStart: number, i: number, at: (i: number, k: number) => number, fileSize: number): Uint8Array | string {
  const offset = at(i, 0), csize = at(i, 1), usize = at(i, 2), method = at(i, 3), crc = at(i, 4), flags = at(i, 5);
  if (flags & 1) return 'encrypted zip entry (not supported)';
  if (method !== 0 && method !== 8) return `zip entry compressed with method ${method} (only stored and deflate are supported)`;
  const h = offset - runStart;
  if (h + 30 > run.length) return 'truncated zip file (local header past the end)';
  const dv = new DataView(run.buffer, run.byteOffset, run.byteLength);
  if (dv.getUint32(h, true) !== 0x04034b50) return 'corrupt zip entry (bad local header; the zip changed since organize?)';
  const dataStart = offset + 30 + dv.getUint16(h + 26, true) + dv.getUint16(h + 28, true);
  if (dataStart + csize > fileSize) return 'truncated zip file (entry data past the end)';
  const raw = dataStart + csize <= runStart + run.length ? run.subarray(dataStart - runStart, dataStart - runStart + csize) : readAt(fd, dataStart, csize);
  let bytes: Uint8Array;
  try {
    bytes = method === 0 ? raw : inflateRawSync(raw, { maxOutputLength: Math.max(usize, 1) });
  } catch (e) {
    return `corrupt zip entry (${(e as Error).message})`;
  }
  if (bytes.length !== usize) return `corrupt zip entry (${bytes.length} bytes, ${usize} expected)`;
  if (crc32(bytes) !== crc >>> 0) return 'corrupt zip entry (CRC mismatch)';
  return bytes;
}

function readAt(fd: number, position: number, length: number): Uint8Array {
  const buf = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done === length ? buf : buf.subarray(0, done);
}
