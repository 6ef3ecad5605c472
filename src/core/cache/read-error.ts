import { isIdcError } from '../errors';

/** A file-system error as a reason shown next to the file's name. */
export function describeReadError(e: unknown): string {
  if (isIdcError(e)) return e.message; // readRegularFileSync's refusals (FIFO, device, too large)
  switch ((e as NodeJS.ErrnoException)?.code) {
    case 'ENOENT': return 'missing file (moved or deleted since organize?)';
    case 'EACCES': case 'EPERM': return 'unreadable: permission denied';
    case 'EISDIR': return 'is a folder, not a file';
    case 'EIO': return 'unreadable: I/O error';
    case 'ENXIO': return 'not a regular file (a socket or device)';
    default: return `unreadable: ${(e as Error)?.message ?? String(e)}`;
  }
}
