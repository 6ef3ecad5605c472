/**
 * A few hand-assembled WebAssembly SIMD loops that run on the tfjs wasm heap (they import its
 * memory). They cover what XNNPACK has no operator for — first-max routing for MaxPoolGrad and the
 * fused batch-norm passes — where plain JS is ~10x slower. Channel counts must be multiples of 4;
 * callers fall back otherwise. Pointers are byte offsets into the heap.
 */

const I32 = 0x7f;
const V128 = 0x7b;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && !(b & 0x40)) || (n === -1 && b & 0x40)) { out.push(b); return out; }
    out.push(b | 0x80);
  }
}

type Code = number[];
const get = (i: number): Code => [0x20, ...uleb(i)];
const set = (i: number): Code => [0x21, ...uleb(i)];
const i32 = (v: number): Code => [0x41, ...sleb(v)];
const ADD = [0x6a], MUL = [0x6c], LT_U = [0x49], EQZ = [0x45];
const simd = (op: number): Code => [0xfd, ...uleb(op)];
const vload = (addr: Code): Code => [...addr, ...simd(0x00), 2, 0];
const vstore = (addr: Code, value: Code): Code => [...addr, ...value, ...simd(0x0b), 2, 0];
const F32X4_GT = simd(0x44), V_AND = simd(0x4e), V_ANDNOT = simd(0x4f), V_BITSELECT = simd(0x52);
const F32X4_ADD = simd(0xe4), F32X4_SUB = simd(0xe5), F32X4_MUL = simd(0xe6);
/** local += step */
const inc = (i: number, step: Code): Code => [...get(i), ...step, ...ADD, ...set(i)];
/** for (local = 0; local < limit; local += step) body */
const loop = (local: number, limit: Code, step: Code, body: Code): Code => [
  ...i32(0), ...set(local),
  0x02, 0x40, 0x03, 0x40,
  ...get(local), ...limit, ...LT_U, ...EQZ, 0x0d, 1,
  ...body, ...inc(local, step),
  0x0c, 0, 0x0b, 0x0b,
];
const plus = (a: Code, b: Code): Code => [...a, ...b, ...ADD];

interface Fn { name: string; params: number; locals: number[]; body: Code }

// colsum(x, acc, rows, C): acc[c] += Σ_r x[r, c]
const colsum: Fn = (() => {
  const [x, acc, rows, C, r, c, px, pa] = [0, 1, 2, 3, 4, 5, 6, 7];
  return {
    name: 'colsum', params: 4, locals: [I32, I32, I32, I32],
    body: [
      ...get(x), ...set(px),
      ...loop(r, get(rows), i32(1), [
        ...get(acc), ...set(pa),
        ...loop(c, get(C), i32(4), [
          ...vstore(get(pa), [...vload(get(pa)), ...vload(get(px)), ...F32X4_ADD]),
          ...inc(pa, i32(16)), ...inc(px, i32(16)),
        ]),
      ]),
    ],
  };
})();

// colsum2(a, b, acc1, acc2, rows, C): acc1 += Σ a, acc2 += Σ a·b
const colsum2: Fn = (() => {
  const [a, b, acc1, acc2, rows, C, r, c, pa, pb, p1, p2, va] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
  return {
    name: 'colsum2', params: 6, locals: [I32, I32, I32, I32, I32, I32, V128],
    body: [
      ...get(a), ...set(pa), ...get(b), ...set(pb),
      ...loop(r, get(rows), i32(1), [
        ...get(acc1), ...set(p1), ...get(acc2), ...set(p2),
        ...loop(c, get(C), i32(4), [
          ...vload(get(pa)), ...set(va),
          ...vstore(get(p1), [...vload(get(p1)), ...get(va), ...F32X4_ADD]),
          ...vstore(get(p2), [...vload(get(p2)), ...get(va), ...vload(get(pb)), ...F32X4_MUL, ...F32X4_ADD]),
          ...inc(pa, i32(16)), ...inc(pb, i32(16)), ...inc(p1, i32(16)), ...inc(p2, i32(16)),
        ]),
      ]),
    ],
  };
})();

// centerSq(x, mean, xc, acc, rows, C): xc = x − mean; acc += xc²
const centerSq: Fn = (() => {
  const [x, mean, xc, acc, rows, C, r, c, px, pm, po, pa, d] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
  return {
    name: 'centerSq', params: 6, locals: [I32, I32, I32, I32, I32, I32, V128],
    body: [
      ...get(x), ...set(px), ...get(xc), ...set(po),
      ...loop(r, get(rows), i32(1), [
        ...get(mean), ...set(pm), ...get(acc), ...set(pa),
        ...loop(c, get(C), i32(4), [
          ...vload(get(px)), ...vload(get(pm)), ...F32X4_SUB, ...set(d),
          ...vstore(get(po), get(d)),
          ...vstore(get(pa), [...vload(get(pa)), ...get(d), ...get(d), ...F32X4_MUL, ...F32X4_ADD]),
          ...inc(px, i32(16)), ...inc(pm, i32(16)), ...inc(po, i32(16)), ...inc(pa, i32(16)),
        ]),
      ]),
    ],
  };
})();

// affine2(a, b, k, m, q, out, rows, C): out = a·k + b·m + q (per-channel k, m, q); b may be 0 (then m is ignored)
const affine2: Fn = (() => {
  const [a, b, k, m, q, out, rows, C, r, c, pa, pb, pk, pm, pq, po] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
  return {
    name: 'affine2', params: 8, locals: [I32, I32, I32, I32, I32, I32, I32, I32],
    body: [
      ...get(a), ...set(pa), ...get(b), ...set(pb), ...get(out), ...set(po),
      ...loop(r, get(rows), i32(1), [
        ...get(k), ...set(pk), ...get(m), ...set(pm), ...get(q), ...set(pq),
        ...loop(c, get(C), i32(4), [
          ...vstore(get(po), [
            ...vload(get(pa)), ...vload(get(pk)), ...F32X4_MUL,
            ...vload(get(pb)), ...vload(get(pm)), ...F32X4_MUL, ...F32X4_ADD,
            ...vload(get(pq)), ...F32X4_ADD,
          ]),
          ...inc(pa, i32(16)), ...inc(pb, i32(16)), ...inc(po, i32(16)),
          ...inc(pk, i32(16)), ...inc(pm, i32(16)), ...inc(pq, i32(16)),
        ]),
      ]),
    ],
  };
})();

// maxPoolGrad2x2(x, dy, dx, B, OH, OW, C, H, W): 2x2 windows, stride 2, no padding; the gradient goes
// to the first maximum (row-major), like the cpu backend. Rows/cols past 2·OH/2·OW are left untouched.
const maxPoolGrad2x2: Fn = (() => {
  const [x, dy, dx, B, OH, OW, C, H, W] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const [n, oh, ow, c, pa, pd, pg, rs, cs] = [9, 10, 11, 12, 13, 14, 15, 16, 17];
  const [v0, v1, v2, v3, best, m01, m2, m3, g, rest] = [18, 19, 20, 21, 22, 23, 24, 25, 26, 27];
  const at = (p: number, off: Code[]): Code => off.reduce((acc, o) => plus(acc, o), get(p));
  return {
    name: 'maxPoolGrad2x2', params: 9, locals: [...Array(9).fill(I32), ...Array(10).fill(V128)],
    body: [
      ...get(W), ...get(C), ...MUL, ...i32(4), ...MUL, ...set(rs),
      ...get(C), ...i32(4), ...MUL, ...set(cs),
      ...get(dy), ...set(pg),
      ...loop(n, get(B), i32(1), [
        ...loop(oh, get(OH), i32(1), [
          // byte offset of input row 2·oh of image n: ((n·H + 2·oh)·W·C)·4 = (n·H + 2·oh)·rs
          ...get(n), ...get(H), ...MUL, ...get(oh), ...get(oh), ...ADD, ...ADD, ...get(rs), ...MUL, ...set(pa),
          ...get(dx), ...get(pa), ...ADD, ...set(pd),
          ...get(x), ...get(pa), ...ADD, ...set(pa),
          ...loop(ow, get(OW), i32(1), [
            ...loop(c, get(C), i32(4), [
              ...vload(get(pa)), ...set(v0),
              ...vload(at(pa, [get(cs)])), ...set(v1),
              ...vload(at(pa, [get(rs)])), ...set(v2),
              ...vload(at(pa, [get(rs), get(cs)])), ...set(v3),
              ...vload(get(pg)), ...set(g),
              ...get(v1), ...get(v0), ...F32X4_GT, ...set(m01),
              ...get(v1), ...get(v0), ...get(m01), ...V_BITSELECT, ...set(best),
              ...get(v2), ...get(best), ...F32X4_GT, ...set(m2),
              ...get(v2), ...get(best), ...get(m2), ...V_BITSELECT, ...set(best),
              ...get(v3), ...get(best), ...F32X4_GT, ...set(m3),
              ...vstore(at(pd, [get(rs), get(cs)]), [...get(g), ...get(m3), ...V_AND]),
              ...vstore(at(pd, [get(rs)]), [...get(g), ...get(m2), ...V_AND, ...get(m3), ...V_ANDNOT]),
              ...get(g), ...get(m2), ...V_ANDNOT, ...get(m3), ...V_ANDNOT, ...set(rest),
              ...vstore(at(pd, [get(cs)]), [...get(rest), ...get(m01), ...V_AND]),
              ...vstore(get(pd), [...get(rest), ...get(m01), ...V_ANDNOT]),
              ...inc(pa, i32(16)), ...inc(pd, i32(16)), ...inc(pg, i32(16)),
            ]),
            ...inc(pa, get(cs)), ...inc(pd, get(cs)),
          ]),
        ]),
      ]),
    ],
  };
})();

// reluGrad(x, dy, out, n): out = x > 0 ? dy : 0 over n floats (n % 4 == 0)
const reluGrad: Fn = (() => {
  const [x, dy, out, n, i, zero] = [0, 1, 2, 3, 4, 5];
  return {
    name: 'reluGrad', params: 4, locals: [I32, V128],
    body: [
      ...simd(0x0c), ...Array(16).fill(0), ...set(zero),
      ...get(n), ...i32(4), ...MUL, ...set(n), // n in bytes
      ...loop(i, get(n), i32(16), [
        ...vstore(plus(get(out), get(i)), [
          ...vload(plus(get(dy), get(i))), ...vload(plus(get(x), get(i))), ...get(zero), ...F32X4_GT, ...V_AND,
        ]),
      ]),
    ],
  };
})();

const FUNCTIONS = [colsum, colsum2, centerSq, affine2, maxPoolGrad2x2, reluGrad];

function section(id: number, payload: Code): Code {
  return [id, ...uleb(payload.length), ...payload];
}
const vec = (items: Code[]): Code => [...uleb(items.length), ...items.flat()];
const str = (s: string): Code => [...uleb(s.length), ...Buffer.from(s, 'utf8')];

function assemble(fns: Fn[]): Uint8Array<ArrayBuffer> {
  const types = vec(fns.map((f) => [0x60, ...uleb(f.params), ...Array(f.params).fill(I32), 0]));
  const imports = vec([[...str('env'), ...str('memory'), 0x02, 0x00, 0x00]]);
  const funcs = vec(fns.map((_, i) => uleb(i)));
  const exports = vec(fns.map((f, i) => [...str(f.name), 0x00, ...uleb(i)]));
  const bodies = vec(fns.map((f) => {
    const locals = vec(f.locals.map((t) => [1, t]));
    const body = [...locals, ...f.body, 0x0b];
    return [...uleb(body.length), ...body];
  }));
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, types), ...section(2, imports), ...section(3, funcs), ...section(7, exports), ...section(10, bodies),
  ]);
}

export interface SimdKernels {
  colsum(x: number, acc: number, rows: number, C: number): void;
  colsum2(a: number, b: number, acc1: number, acc2: number, rows: number, C: number): void;
  centerSq(x: number, mean: number, xc: number, acc: number, rows: number, C: number): void;
  affine2(a: number, b: number, k: number, m: number, q: number, out: number, rows: number, C: number): void;
  maxPoolGrad2x2(x: number, dy: number, dx: number, B: number, OH: number, OW: number, C: number, H: number, W: number): void;
  reluGrad(x: number, dy: number, out: number, n: number): void;
}

let compiled: WebAssembly.Module | null | undefined;
const instances = new WeakMap<WebAssembly.Memory, SimdKernels>();

/** The loops bound to `memory`, or null where the engine lacks wasm SIMD. */
export function simdKernels(memory: WebAssembly.Memory): SimdKernels | null {
  if (compiled === undefined) {
    const bytes = assemble(FUNCTIONS);
    compiled = WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
  }
  if (!compiled) return null;
  let k = instances.get(memory);
  if (!k) {
    k = new WebAssembly.Instance(compiled, { env: { memory } }).exports as unknown as SimdKernels;
    instances.set(memory, k);
  }
  return k;
}
