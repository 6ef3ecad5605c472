import { openSync, closeSync, readSync, read, readFileSync, fstatSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { IdcError } from '../errors';
import { Rng } from '../rng';
import { SPLIT_NAMES, type SplitFile, type SplitName } from '../split';
import { PATCH_BYTES, type EdgeMode } from './pixels';
import { CACHE_FILE, CACHE_VERSION, dataFile, idsFile, labelsFile, splitHash, type CacheManifest, type SplitCacheMeta } from './format';
import { applyOdMatrix } from './stain-norm';
import { patientOfId, type StainTable } from './stains';

export interface OpenCacheOptions {
  /** Throws STALE_CACHE when the cache was built from another manifest, split or edge mode. */
  expect?: { manifestHash?: string; split?: Pick<SplitFile, 'patients'>; edgePatches?: EdgeMode };
  /**
   * Hold the whole split in one Buffer (true), read rows from the file on demand (false), or
   * 'auto' (default): in memory up to MEMORY_LIMIT bytes. Reading from the file leaves caching to
   * the OS page cache, so a 1.45 GB train split costs no heap.
   */
  memory?: boolean | 'auto';
  /** Normalize every row with its patient's stain map as it is read (readRawBatch reads as cached). */
  stains?: Pick<StainTable, 'patients'>;
}

export interface BatchOptions {
  batchSize: number;
  shuffle: boolean;
  seed?: number;
  epoch?: number;
  /** Leave out the last, short batch. */
  dropRemainder?: boolean;
  /** Start at this batch of the epoch's order: replays the rest of an interrupted epoch. */
  startBatch?: number;
  /**
   * Read the next batch on libuv's threads while the current one is used. Off by default: from the
   * page cache a synchronous random batch of 64 costs ~0.6 ms, the async one several times that
   * (one thread-pool round trip per patch); it pays off only when the file is not cached (disk latency).
   */
  prefetch?: boolean;
  /** false: no pixels are read (x is empty), for a trainer that reads the rows itself. */
  pixels?: boolean;
}

export interface CacheBatch {
  /** batch x 50 x 50 x 3 uint8 RGB (empty under pixels: false). */
  x: Uint8Array;
  /** 0/1 per patch. */
  y: Uint8Array;
  /** Row numbers in the split (map to ids with `reader.ids`). */
  indices: Uint32Array;
  batch: number;
  batches: number;
  epoch: number;
}

export interface CacheReader {
  readonly cacheDir: string;
  readonly split: SplitName;
  readonly size: number;
  readonly positives: number;
  readonly labels: Uint8Array;
  /** Manifest id per row; read on first use (it is ~6 MB of JSON for the train split). */
  readonly ids: readonly string[];
  /** The split is held in one Buffer, read whole on the first read (OpenCacheOptions.memory). */
  readonly inMemory: boolean;
  readonly meta: SplitCacheMeta;
  /** Rows are stain-normalized as they are read (OpenCacheOptions.stains). */
  readonly stainNormalized: boolean;
  /** Gathers rows into `out` (or a new array): indices.length x 7500 bytes, normalized when the reader is. */
  readBatch(indices: ArrayLike<number>, out?: Uint8Array): Uint8Array;
  /** The rows as decoded from the archive, never normalized: what a person looks at. */
  readRawBatch(indices: ArrayLike<number>, out?: Uint8Array): Uint8Array;
  /** Same, with the reads on libuv's threads: overlaps I/O with work on this thread. */
  readBatchAsync(indices: ArrayLike<number>, out?: Uint8Array): Promise<Uint8Array>;
  batchCount(opts: Pick<BatchOptions, 'batchSize' | 'dropRemainder'>): number;
  /** One epoch of batches in the seeded order of (seed, epoch). */
  batches(opts: BatchOptions): AsyncGenerator<CacheBatch, void, undefined>;
  close(): void;
}

const NO_PIXELS = new Uint8Array(0);

/** Splits up to this size are read into memory under memory: 'auto'. */
export const MEMORY_LIMIT = 512 * 1024 * 1024;

export function readCacheManifest(cacheDir: string): CacheManifest {
  const file = join(cacheDir, CACHE_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new IdcError(`No complete patch cache in ${cacheDir}.`, 'Build the patch cache first (training builds it when it is missing or stale).', 'NO_CACHE');
    }
    throw e;
  }
  let m: CacheManifest;
  try {
    m = JSON.parse(text) as CacheManifest;
  } catch (e) {
    throw new IdcError(`${file} is not valid JSON: ${(e as Error).message}`, 'Delete the cache folder and build the cache again.', 'CORRUPT_CACHE');
  }
  if (m.version !== CACHE_VERSION || !m.splits || !SPLIT_NAMES.every((s) => m.splits[s])) {
    throw new IdcError(`${file} is from another version of the patch cache (${JSON.stringify(m.version)}, expected ${CACHE_VERSION}).`, 'Build the patch cache again.', 'STALE_CACHE');
  }
  return m;
}

export function openCache(cacheDir: string, split: SplitName, opts: OpenCacheOptions = {}): CacheReader {
  const dir = resolve(cacheDir);
  const m = readCacheManifest(dir);
  const stale = (what: string) => new IdcError(`The patch cache in ${dir} was built from ${what}.`, 'Build the patch cache again (training rebuilds it automatically).', 'STALE_CACHE');
  if (opts.expect?.manifestHash !== undefined && m.manifestHash !== opts.expect.manifestHash) throw stale(`another manifest (${m.manifestHash}, current ${opts.expect.manifestHash})`);
  if (opts.expect?.split && m.splitHash !== splitHash(opts.expect.split)) throw stale('another split');
  if (opts.expect?.edgePatches !== undefined && m.edgePatches !== opts.expect.edgePatches) throw stale(`edgePatches "${m.edgePatches}" (now "${opts.expect.edgePatches}")`);
  return new Reader(dir, split, m.splits[split], opts.memory ?? 'auto', opts.stains);
}

/** The seeded order of an epoch: the same (seed, epoch) always gives the same permutation. */
export function epochOrder(size: number, seed: number, epoch: number): Uint32Array {
  const order = new Uint32Array(size);
  for (let i = 0; i < size; i++) order[i] = i;
  const rng = new Rng(`cache-epoch:${seed}:${epoch}`);
  for (let i = size - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
}

class Reader implements CacheReader {
  readonly size: number;
  readonly positives: number;
  readonly labels: Uint8Array;
  readonly inMemory: boolean;
  private fd = -1;
  private buf?: Buffer;
  private idList?: string[];
  /** ids.json as it was at open: read lazily, so a rebuild in between must be noticed. */
  private idsStamp = '';

  /** Per row: its patient's OD matrix (undefined: used as it is). Built on first read. */
  private rowMatrix?: (number[] | undefined)[];

  constructor(readonly cacheDir: string, readonly split: SplitName, readonly meta: SplitCacheMeta, memory: boolean | 'auto', private readonly stains?: Pick<StainTable, 'patients'>) {
    this.size = meta.count;
    this.positives = meta.positives;
    const corrupt = (why: string) => new IdcError(`The patch cache's ${split} files in ${cacheDir} are damaged: ${why}.`, 'Delete the cache folder and build the cache again.', 'CORRUPT_CACHE');
    try {
      this.labels = new Uint8Array(readFileSync(join(cacheDir, labelsFile(split))));
      this.fd = openSync(join(cacheDir, dataFile(split)), 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw corrupt(`${(e as NodeJS.ErrnoException).path ?? 'a file'} is missing`);
      throw e;
    }
    this.idsStamp = stamp(join(cacheDir, idsFile(split)));
    const bytes = fstatSync(this.fd).size;
    if (this.labels.length !== this.size || bytes !== this.size * PATCH_BYTES) {
      this.close();
      throw corrupt(`expected ${this.size} patches, found ${this.labels.length} labels and ${bytes / PATCH_BYTES} patches`);
    }
    this.inMemory = memory === true || (memory === 'auto' && bytes <= MEMORY_LIMIT);
  }

  get ids(): readonly string[] {
    if (!this.idList) {
      const file = join(this.cacheDir, idsFile(this.split));
      if (stamp(file) !== this.idsStamp) {
        throw new IdcError(`The patch cache in ${this.cacheDir} was rebuilt while it was open.`, 'Open it again.', 'STALE_CACHE');
      }
      const list = JSON.parse(readFileSync(file, 'utf8')) as string[];
      if (!Array.isArray(list) || list.length !== this.size) {
        throw new IdcError(`${join(this.cacheDir, idsFile(this.split))} does not match the cache (${list?.length} ids for ${this.size} patches).`, 'Delete the cache folder and build the cache again.', 'CORRUPT_CACHE');
      }
      this.idList = list;
    }
    return this.idList;
  }

  get stainNormalized(): boolean {
    return this.stains !== undefined;
  }

  readBatch(indices: ArrayLike<number>, out?: Uint8Array): Uint8Array {
    return this.normalize(indices, this.readRawBatch(indices, out));
  }

  readRawBatch(indices: ArrayLike<number>, out?: Uint8Array): Uint8Array {
    const dst = this.target(indices, out);
    if (this.inMemory) this.load();
    if (this.buf) {
      for (let k = 0; k < indices.length; k++) {
        const s = indices[k] * PATCH_BYTES;
        dst.set(this.buf.subarray(s, s + PATCH_BYTES), k * PATCH_BYTES);
      }
      return dst;
    }
    this.open();
    for (const [k, row, n] of runs(indices)) readFully(this.fd, dst, k * PATCH_BYTES, n * PATCH_BYTES, row * PATCH_BYTES);
    return dst;
  }

  async readBatchAsync(indices: ArrayLike<number>, out?: Uint8Array): Promise<Uint8Array> {
    if (this.inMemory) return this.readBatch(indices, out);
    const dst = this.target(indices, out);
    this.open();
    const fd = this.fd;
    await Promise.all(Array.from(runs(indices), ([k, row, n]) => readFullyAsync(fd, dst, k * PATCH_BYTES, n * PATCH_BYTES, row * PATCH_BYTES)));
    return this.normalize(indices, dst);
  }

  private normalize(indices: ArrayLike<number>, dst: Uint8Array): Uint8Array {
    if (!this.stains) return dst;
    if (!this.rowMatrix) {
      const table = this.stains.patients;
      this.rowMatrix = this.ids.map((id) => { const e = table[patientOfId(id)]; return e && 'matrix' in e ? e.matrix : undefined; });
    }
    const px = PATCH_BYTES / 3;
    for (let k = 0; k < indices.length; k++) {
      const m = this.rowMatrix[indices[k]];
      if (m) applyOdMatrix(dst, m, k * px, px);
    }
    return dst;
  }

  batchCount(opts: Pick<BatchOptions, 'batchSize' | 'dropRemainder'>): number {
    checkBatchSize(opts.batchSize);
    return opts.dropRemainder ? Math.floor(this.size / opts.batchSize) : Math.ceil(this.size / opts.batchSize);
  }

  async *batches(opts: BatchOptions): AsyncGenerator<CacheBatch, void, undefined> {
    const bs = opts.batchSize;
    const batches = this.batchCount(opts);
    const epoch = opts.epoch ?? 0;
    const start = opts.startBatch ?? 0;
    if (!Number.isInteger(start) || start < 0) throw new RangeError(`startBatch must be a whole number >= 0 (got ${start}).`);
    const order = opts.shuffle ? epochOrder(this.size, opts.seed ?? 0, epoch) : undefined;
    const plan = (b: number) => {
      const lo = b * bs, hi = Math.min(lo + bs, this.size);
      const indices = order ? order.slice(lo, hi) : Uint32Array.from({ length: hi - lo }, (_, i) => lo + i);
      const y = new Uint8Array(indices.length);
      for (let i = 0; i < indices.length; i++) y[i] = this.labels[indices[i]];
      return { y, indices, batch: b, batches, epoch };
    };
    if (!opts.prefetch || opts.pixels === false) {
      for (let b = start; b < batches; b++) {
        const p = plan(b);
        yield { ...p, x: opts.pixels === false ? NO_PIXELS : this.readBatch(p.indices) };
      }
      return;
    }
    const load = (b: number): Promise<CacheBatch> => {
      const p = plan(b);
      const loaded = this.readBatchAsync(p.indices).then((x) => ({ ...p, x }));
      loaded.catch(() => {}); // awaited below; a consumer that stops early must not leave an unhandled rejection
      return loaded;
    };
    let next = start < batches ? load(start) : undefined;
    for (let b = start; b < batches; b++) {
      const cur = await next!;
      next = b + 1 < batches ? load(b + 1) : undefined;
      yield cur;
    }
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
    this.buf = undefined;
  }

  private open(): void {
    if (this.fd < 0) throw new Error(`The ${this.split} cache reader is closed.`);
  }

  /** The whole split into memory, on the first read: a reader whose rows another process reads (the torch engine) never pays for it. */
  private load(): void {
    if (this.buf) return;
    this.open();
    const bytes = this.size * PATCH_BYTES;
    this.buf = Buffer.allocUnsafe(bytes);
    readFully(this.fd, this.buf, 0, bytes, 0);
    closeSync(this.fd);
    this.fd = -1;
  }

  private target(indices: ArrayLike<number>, out?: Uint8Array): Uint8Array {
    for (let k = 0; k < indices.length; k++) {
      const i = indices[k];
      if (!Number.isInteger(i) || i < 0 || i >= this.size) throw new RangeError(`Row ${i} is outside the ${this.split} cache (0..${this.size - 1}).`);
    }
    const need = indices.length * PATCH_BYTES;
    if (!out) return new Uint8Array(need);
    if (out.length < need) throw new RangeError(`The output holds ${out.length} bytes; ${indices.length} patches need ${need}.`);
    return out;
  }
}

function stamp(file: string): string {
  try {
    const st = statSync(file);
    return `${st.size}:${st.mtimeMs}:${st.ino}`;
  } catch {
    return 'missing';
  }
}

function checkBatchSize(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`batchSize must be a whole number >= 1 (got ${n}).`);
}

/** [position in batch, first row, rows] for each run of consecutive rows: unshuffled batches are one read. */
function* runs(indices: ArrayLike<number>): Generator<[number, number, number]> {
  let k = 0;
  while (k < indices.length) {
    const start = k;
    while (k + 1 < indices.length && indices[k + 1] === indices[k] + 1) k++;
    k++;
    yield [start, indices[start], k - start];
  }
}

function readFully(fd: number, dst: Uint8Array, offset: number, length: number, position: number): void {
  let done = 0;
  while (done < length) {
    const n = readSync(fd, dst, offset + done, length - done, position + done);
    if (n === 0) throw new Error(`Unexpected end of the cache file at byte ${position + done}.`);
    done += n;
  }
}

function readFullyAsync(fd: number, dst: Uint8Array, offset: number, length: number, position: number): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const step = (done: number): void => {
      if (done >= length) return resolvePromise();
      read(fd, dst, offset + done, length - done, position + done, (err, n) => {
        if (err) return reject(err);
        if (n === 0) return reject(new Error(`Unexpected end of the cache file at byte ${position + done}.`));
        step(done + n);
      });
    };
    step(0);
  });
}
