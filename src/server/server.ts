/** Entry point of dist/server.js: the language server, or (with --idc-job-host) one of its job processes. */
import { JOB_HOST_ARG } from '../protocol/job-host';

if (process.argv.includes(JOB_HOST_ARG)) void import('./job-host').then((m) => m.runJobHost());
else void import('./language-server').then((m) => m.startLanguageServer());
