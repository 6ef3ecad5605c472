/**
 * Step timing shared by bench/train.ts and bench/gpu/bench.ts (kept apart from train.ts, which
 * imports esbuild at load: the GPU bench runs bundled on a machine without node_modules).
 */
import { readdirSync, readFileSync } from 'node:fs';

export interface Rate { med: number; best: number; cpu: number }

export const cell = (r: Rate) => `${r.med.toFixed(0)} (${r.best.toFixed(0)}) ${Number.isNaN(r.cpu) ? '-' : r.cpu.toFixed(0)}`;

/** utime + stime ticks (1/100 s) of each thread of this process, workers included (Linux). */
export function threadTicks(): Map<string, number> {
  const out = new Map<string, number>();
  try {
    for (const tid of readdirSync('/proc/self/task')) {
      const s = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      out.set(tid, Number(f[11]) + Number(f[12]));
    }
  } catch { /* not Linux */ }
  return out;
}

/**
 * img/s of the median and the best of `steps` timed calls, after `warm` untimed ones, and img/s by
 * the busiest thread's CPU time: on a shared, loaded box that is what an idle machine's wall clock
 * would show, give or take the waits between replicas (so an upper bound for N replicas).
 */
export async function rate(b: number, f: () => Promise<unknown>, warm: number, steps: number): Promise<Rate> {
  for (let i = 0; i < warm; i++) await f();
  const ms: number[] = [];
  const before = threadTicks();
  for (let i = 0; i < steps; i++) { const t = performance.now(); await f(); ms.push(performance.now() - t); }
  let busiest = 0;
  for (const [tid, ticks] of threadTicks()) busiest = Math.max(busiest, ticks - (before.get(tid) ?? 0));
  ms.sort((a, c) => a - c);
  return { med: (b * 1000) / ms[Math.floor(ms.length / 2)], best: (b * 1000) / ms[0], cpu: busiest ? (b * steps * 100) / busiest : NaN };
}
