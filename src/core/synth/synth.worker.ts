import { parentPort } from 'node:worker_threads';
import { isIdcError } from '../errors';
import { runPatientJob, type PatientJob } from './patient';

/** Worker side of the synth pool: one patient per message, progress ticks in between. */
const port = parentPort;
if (port) {
  port.on('message', (job: PatientJob) => {
    try {
      const result = runPatientJob(job, (n) => port.postMessage({ type: 'tick', n }));
      port.postMessage({ type: 'done', result }, result.blob ? [result.blob.buffer as ArrayBuffer] : []);
    } catch (e) {
      const err = e as NodeJS.ErrnoException & { hint?: string };
      port.postMessage({
        type: 'error',
        error: { message: err?.message ?? String(e), stack: err?.stack, code: isIdcError(e) ? e.code : err?.code, path: err?.path, hint: err?.hint, idc: isIdcError(e) },
      });
    }
  });
}
