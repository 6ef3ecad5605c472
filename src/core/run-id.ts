/**
 * The one definition of a valid run id: a run id becomes a folder name under runs/, so it must be
 * a plain name. No imports, so the server and the views can use it without the training code.
 */
const RUN_ID = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/** Why `id` is not a usable run id, or undefined when it is. */
export function runIdProblem(id: unknown): string | undefined {
  if (typeof id !== 'string' || id === '') return 'is empty';
  if (id === '.' || id === '..') return `"${id}" is not a name (it would write into another folder)`;
  if (!RUN_ID.test(id)) return `"${id}" may only contain letters, digits, "_", "-" and "." (not first), at most 128 characters`;
  return undefined;
}

export function isRunId(id: unknown): id is string {
  return runIdProblem(id) === undefined;
}
