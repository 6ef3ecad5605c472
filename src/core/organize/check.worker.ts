import { parentPort } from 'node:worker_threads';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkUnit } from './check-unit';
import type { ArchiveEntry } from './listing';

/** Checks one patient folder per message, off the main thread: file reads and CRCs are the cost. */
export interface CheckRequest { root: string; unit: string; sig: string; entries: ArchiveEntry[] }

parentPort!.on('message', (req: CheckRequest) => {
  void checkUnit(req.unit, req.sig, req.entries, (e) => readFileSync(join(req.root, ...e.parts)), 'dir')
    .then((rec) => parentPort!.postMessage(rec));
});
