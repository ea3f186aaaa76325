// AdamW's flat update as a tiny hand-assembled WebAssembly SIMD kernel (f32x4): float32 IEEE arithmetic in the
// flat update graph's order, so it is bit-identical to buildFlatUpdateGraph and to flatUpdateInPlace (which needs
// a Math.fround per operation and is bound by those conversions). Data is copied through the module's own memory
// in slices (wasm cannot address JavaScript's ArrayBuffers).

/** Elements per slice copied through wasm memory (4 arrays of this many floats). */
const SLICE = 1 << 18;

const uleb = (n: number): number[] => {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
};
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const str = (s: string): number[] => [...uleb(s.length), ...[...s].map((c) => c.charCodeAt(0))];

function assemble(): Uint8Array<ArrayBuffer> {
  const I32 = 0x7f, F32 = 0x7d, V128 = 0x7b;
  const get = (i: number) => [0x20, i], set = (i: number) => [0x21, i], tee = (i: number) => [0x22, i];
  const simd = (op: number) => [0xfd, ...uleb(op)];
  const load = [...simd(0), 4, 0], store = [...simd(11), 4, 0];
  const splat = simd(19), sqrt = simd(227), add = simd(228), sub = simd(229), mul = simd(230), div = simd(231);
  // params: w g m v nbytes (i32), coef b1 b1c b2 b2c ib eps ss dec (f32); locals: i (14), splats 15..23, gr mi vi 24..26
  const [W, G, M, V, N] = [0, 1, 2, 3, 4];
  const I = 14, L = (k: number) => 15 + k, GR = 24, MI = 25, VI = 26;
  const at = (base: number) => [...get(base), ...get(I), 0x6a]; // base + i
  const body: number[] = [];
  for (let k = 0; k < 9; k++) body.push(...get(5 + k), ...splat, ...set(L(k)));
  body.push(0x02, 0x40, 0x03, 0x40); // block, loop
  body.push(...get(I), ...get(N), 0x4f, 0x0d, 1); // i >= n: br_if 1
  body.push(...at(G), ...load, ...get(L(0)), ...mul, ...set(GR));
  body.push(...at(M), ...at(M), ...load, ...get(L(1)), ...mul, ...get(GR), ...get(L(2)), ...mul, ...add, ...tee(MI), ...store);
  body.push(...at(V), ...at(V), ...load, ...get(L(3)), ...mul, ...get(GR), ...get(GR), ...mul, ...get(L(4)), ...mul, ...add, ...tee(VI), ...store);
  body.push(...at(W), ...at(W), ...load, ...get(L(8)), ...mul);
  body.push(...get(L(7)), ...get(MI), ...get(VI), ...sqrt, ...get(L(5)), ...mul, ...get(L(6)), ...add, ...div, ...mul, ...sub, ...store);
  body.push(...get(I), 0x41, 16, 0x6a, ...set(I), 0x0c, 0, 0x0b, 0x0b); // i += 16; br 0; end loop; end block
  body.push(0x0b); // end function
  const locals = vec([[...uleb(1), I32], [...uleb(12), V128]]);
  const code = [...locals, ...body];
  const pages = Math.ceil((4 * SLICE * 4) / 65536);
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([[0x60, ...vec([I32, I32, I32, I32, I32, F32, F32, F32, F32, F32, F32, F32, F32, F32].map((t) => [t])), 0]])),
    ...section(3, vec([[0]])),
    ...section(5, vec([[0x00, ...uleb(pages)]])),
    ...section(7, vec([[...str('adam'), 0x00, 0], [...str('mem'), 0x02, 0]])),
    ...section(10, vec([[...uleb(code.length), ...code]])),
  ];
  return new Uint8Array(bytes);
}

type AdamFn = (w: number, g: number, m: number, v: number, nbytes: number, ...s: number[]) => void;
let kernel: { adam: AdamFn; mem: WebAssembly.Memory } | null | undefined;

function load(): { adam: AdamFn; mem: WebAssembly.Memory } | null {
  if (kernel !== undefined) return kernel;
  try {
    const inst = new WebAssembly.Instance(new WebAssembly.Module(assemble()));
    kernel = { adam: inst.exports.adam as AdamFn, mem: inst.exports.mem as WebAssembly.Memory };
  } catch {
    kernel = null; // no wasm SIMD here: the caller falls back to the JavaScript loop
  }
  return kernel;
}

/** AdamW scalars as the flat graph uses them (all float32-rounded by the kernel's f32 parameters). */
export interface AdamScalars {
  coef: number; b1: number; b1c: number; b2: number; b2c: number; invBc2: number; eps: number; stepSize: number; decay: number;
}

/**
 * Updates param, m, v in place over [0, n4) where n4 is the largest multiple of 4 <= length; returns n4
 * (the caller finishes the tail), or 0 when WebAssembly SIMD is unavailable.
 */
export function adamSimd(s: AdamScalars, param: Float32Array, grad: Float32Array, m: Float32Array, v: Float32Array): number {
  const k = load();
  if (!k) return 0;
  const n4 = param.length & ~3;
  const mem = new Float32Array(k.mem.buffer);
  const [oW, oG, oM, oV] = [0, SLICE, 2 * SLICE, 3 * SLICE];
  for (let off = 0; off < n4; off += SLICE) {
    const end = Math.min(n4, off + SLICE), len = end - off;
    mem.set(param.subarray(off, end), oW);
    mem.set(grad.subarray(off, end), oG);
    mem.set(m.subarray(off, end), oM);
    mem.set(v.subarray(off, end), oV);
    k.adam(oW * 4, oG * 4, oM * 4, oV * 4, len * 4, s.coef, s.b1, s.b1c, s.b2, s.b2c, s.invBc2, s.eps, s.stepSize, s.decay);
    param.set(mem.subarray(oW, oW + len), off);
    m.set(mem.subarray(oM, oM + len), off);
    v.set(mem.subarray(oV, oV + len), off);
  }
  return n4;
}
