/** A file-system error as a reason shown next to the file's name. */
export function describeReadError(e: unknown): string {
  switch ((e as NodeJS.ErrnoException)?.code) {
    case 'ENOENT': return 'missing file (moved or deleted since organize?)';
    case 'EACCES': case 'EPERM': return 'unreadable: permission denied';
    case 'EISDIR': return 'is a folder, not a file';
    case 'EIO': return 'unreadable: I/O error';
    default: return `unreadable: ${(e as Error)?.message ?? String(e)}`;
  }
}
