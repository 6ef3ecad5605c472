import { parentPort } from 'node:worker_threads';
import { decodeJob, type DecodeJob } from './decode-chunk';

/** Decodes one slice of a split per message; the pixel buffer goes back as a transfer, not a copy. */
parentPort!.on('message', (job: DecodeJob) => {
  try {
    const r = decodeJob(job);
    parentPort!.postMessage({ result: r }, [r.data.buffer as ArrayBuffer]);
  } catch (e) {
    parentPort!.postMessage({ error: (e as Error)?.stack ?? String(e) });
  }
});
