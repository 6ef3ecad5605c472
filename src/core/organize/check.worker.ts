import { parentPort } from 'node:worker_threads';
import { join } from 'node:path';
import { readRegularFileSync } from '../fsutil';
import { checkUnit, zipUnitReader } from './check-unit';
import type { ArchiveEntry } from './listing';

/** Checks one patient per message, off the main thread: reads (and inflates) and CRCs are the cost. */
export interface CheckRequest { root: string; kind: 'dir' | 'zip'; unit: string; sig: string; entries: ArchiveEntry[] }

parentPort!.on('message', (req: CheckRequest) => {
  const read = req.kind === 'zip' ? zipUnitReader(req.root, req.entries) : (e: ArchiveEntry) => readRegularFileSync(join(req.root, ...e.parts));
  void checkUnit(req.unit, req.sig, req.entries, read, req.kind)
    .then((rec) => parentPort!.postMessage(rec));
});
