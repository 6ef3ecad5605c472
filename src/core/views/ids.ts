import type { EvalSplit } from '../../protocol/protocol';

/** Evaluations live in <output>/evaluations/<model>/<split>; panels name them `<model>/<split>`. */
export function evaluationId(e: { model: string; split: EvalSplit }): string {
  return `${e.model}/${e.split}`;
}
