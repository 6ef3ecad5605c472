import type { FileHandle } from 'node:fs/promises';

/**
 * Minimal streaming zip writer for stored (uncompressed) entries, with Zip64 once offsets pass 4 GiB.
 * Not yazl: its pump rescans the entry list from the start for every entry (quadratic — 80k entries
 * took 18 s, the full archive's 555k would take many minutes) and it buffers output without backpressure.
 * PNGs do not deflate further, so storing them is what a real zip tool ends up doing too.
 */
export class ZipWriter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private offset = 0;
  private central: Buffer[] = [];
  private centralCur = Buffer.alloc(1 << 20);
  private centralPos = 0;
  private centralBytes = 0;
  private count = 0;

  /** `forceZip64` writes Zip64 records even for small archives (tests). */
  constructor(private readonly fh: FileHandle, private readonly dosTime: number, private readonly dosDate: number, private readonly forceZip64 = false) {}

  get bytesWritten(): number {
    return this.offset;
  }

  get entries(): number {
    return this.count;
  }

  async add(name: string, data: Uint8Array, crc: number): Promise<void> {
    const nameBuf = Buffer.from(name, 'utf8');
    const utf8 = nameBuf.length !== name.length ? 0x0800 : 0;
    const local = Buffer.alloc(30 + nameBuf.length);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(utf8, 6);
    local.writeUInt16LE(0, 8);
    local.writeUInt16LE(this.dosTime, 10);
    local.writeUInt16LE(this.dosDate, 12);
    local.writeUInt32LE(crc >>> 0, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBuf.length, 26);
    local.writeUInt16LE(0, 28);
    nameBuf.copy(local, 30);

    const at = this.offset;
    const zip64 = this.forceZip64 || at >= 0xffffffff;
    const rec = this.centralSlot(46 + nameBuf.length + (zip64 ? 12 : 0));
    const b = this.centralCur;
    b.writeUInt32LE(0x02014b50, rec);
    b.writeUInt16LE((3 << 8) | (zip64 ? 45 : 20), rec + 4); // made by Unix
    b.writeUInt16LE(zip64 ? 45 : 20, rec + 6);
    b.writeUInt16LE(utf8, rec + 8);
    b.writeUInt16LE(0, rec + 10);
    b.writeUInt16LE(this.dosTime, rec + 12);
    b.writeUInt16LE(this.dosDate, rec + 14);
    b.writeUInt32LE(crc >>> 0, rec + 16);
    b.writeUInt32LE(data.length, rec + 20);
    b.writeUInt32LE(data.length, rec + 24);
    b.writeUInt16LE(nameBuf.length, rec + 28);
    b.writeUInt16LE(zip64 ? 12 : 0, rec + 30);
    b.writeUInt16LE(0, rec + 32); // comment
    b.writeUInt16LE(0, rec + 34); // disk
    b.writeUInt16LE(0, rec + 36); // internal attributes
    b.writeUInt32LE((0o100644 << 16) >>> 0, rec + 38); // regular file, rw-r--r--
    b.writeUInt32LE(zip64 ? 0xffffffff : at, rec + 42);
    nameBuf.copy(b, rec + 46);
    if (zip64) {
      const e = rec + 46 + nameBuf.length;
      b.writeUInt16LE(0x0001, e);
      b.writeUInt16LE(8, e + 2);
      b.writeBigUInt64LE(BigInt(at), e + 4);
    }
    this.count++;
    this.push(local);
    this.push(data);
    if (this.pendingBytes >= 4 << 20) await this.flush();
  }

  /** Writes the central directory and end records; `comment` must be ASCII and under 64 KiB. */
  async finish(comment: string): Promise<void> {
    if (this.centralPos > 0) this.central.push(this.centralCur.subarray(0, this.centralPos));
    const cdOffset = this.offset;
    for (const c of this.central) this.push(c);
    const cdSize = this.centralBytes;
    const commentBuf = Buffer.from(comment, 'latin1');
    const zip64 = this.forceZip64 || this.count >= 0xffff || cdOffset >= 0xffffffff || cdSize >= 0xffffffff;
    if (zip64) {
      const z = Buffer.alloc(56 + 20);
      const eocd64At = this.offset;
      z.writeUInt32LE(0x06064b50, 0);
      z.writeBigUInt64LE(44n, 4);
      z.writeUInt16LE((3 << 8) | 45, 12);
      z.writeUInt16LE(45, 14);
      z.writeUInt32LE(0, 16);
      z.writeUInt32LE(0, 20);
      z.writeBigUInt64LE(BigInt(this.count), 24);
      z.writeBigUInt64LE(BigInt(this.count), 32);
      z.writeBigUInt64LE(BigInt(cdSize), 40);
      z.writeBigUInt64LE(BigInt(cdOffset), 48);
      z.writeUInt32LE(0x07064b50, 56);
      z.writeUInt32LE(0, 60);
      z.writeBigUInt64LE(BigInt(eocd64At), 64);
      z.writeUInt32LE(1, 72);
      this.push(z);
    }
    const e = Buffer.alloc(22 + commentBuf.length);
    e.writeUInt32LE(0x06054b50, 0);
    e.writeUInt16LE(zip64 ? 0xffff : this.count, 8);
    e.writeUInt16LE(zip64 ? 0xffff : this.count, 10);
    e.writeUInt32LE(zip64 ? 0xffffffff : cdSize, 12);
    e.writeUInt32LE(zip64 ? 0xffffffff : cdOffset, 16);
    e.writeUInt16LE(commentBuf.length, 20);
    commentBuf.copy(e, 22);
    this.push(e);
    await this.flush();
  }

  private centralSlot(size: number): number {
    if (this.centralPos + size > this.centralCur.length) {
      this.central.push(this.centralCur.subarray(0, this.centralPos));
      this.centralCur = Buffer.alloc(Math.max(1 << 20, size));
      this.centralPos = 0;
    }
    const at = this.centralPos;
    this.centralPos += size;
    this.centralBytes += size;
    return at;
  }

  private push(b: Uint8Array): void {
    this.pending.push(b as Buffer);
    this.pendingBytes += b.length;
    this.offset += b.length;
  }

  private async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const chunks = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    const all = Buffer.concat(chunks);
    let done = 0;
    while (done < all.length) done += (await this.fh.write(all, done, all.length - done)).bytesWritten;
  }
}

/** The archive comment of a zip file (at most 64 KiB from its end), or undefined when it is not a zip. */
export function readZipComment(tail: Buffer): string | undefined {
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) !== 0x06054b50) continue;
    const len = tail.readUInt16LE(i + 20);
    if (i + 22 + len !== tail.length) continue;
    return tail.subarray(i + 22).toString('latin1');
  }
  return undefined;
}

/** MS-DOS date and time fields for a fixed moment, so archives are byte-identical between runs. */
export function dosDateTime(d: Date): { time: number; date: number } {
  return {
    time: (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | (d.getUTCSeconds() >> 1),
    date: ((d.getUTCFullYear() - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate(),
  };
}
