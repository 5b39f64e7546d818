/**
 * The WebAssembly SIMD kernels behind logistic-regression fits, and the workspace that feeds them.
 *
 * The two passes over the data that dominate a fit (logits = Z·Wᵀ and G += Rᵀ·Z) run in a tiny
 * hand-assembled WebAssembly module using 128-bit SIMD: Z is stored as float32 with rows padded to a
 * multiple of 4 (zeros), promoted to float64 two lanes at a time, and every product and sum is float64.
 * The summation order is fixed (two f64x2 accumulators per dot product, rows in order for G), so
 * results are deterministic. Softmax / sigmoid and the loss stay in JS (n·k exps per evaluation; see
 * logistic-loss.ts). When WebAssembly SIMD is unavailable the plain-JS objective is used instead.
 *
 * The module is emitted byte by byte here (no toolchain, no binary blob in the repository), which is
 * why `kernelModuleBytes` is read together with this map of what it emits:
 *
 *   type 0     (i32 Z, i32 n, i32 dp, i32 A, i32 k, i32 B) -> ()      all pointers are byte offsets
 *   memory 0   exported as "mem", 1 page to start; the workspace grows it to fit
 *   func 0     exported as "fwd":   B[i·k + c]  = Σ_j Z[i, j] · A[c, j]   (A: k×dp f64, B: n×k f64)
 *   func 1     exported as "grad":  B[c, j]    += Σ_i A[i·k + c] · Z[i, j] (A: n×k f64, B: k×dp f64)
 *
 * with Z n×dp float32, dp a positive multiple of 4, n ≥ 0, k ≥ 1. Both functions declare the same
 * locals (6 i32: i, c, j, zRow, row, ptr; 2 v128: v, v2) and share three loop emitters:
 *
 *   rows     for (zRow = Z, i = n; i != 0; i--, zRow += 4·dp)   — one data row per pass
 *   classes  for (row = start, c = 0; c < k; c++, row += 8·dp)    — one float64 weight/gradient row
 *   cols     for (j = 0; j < dp; j += 4)                          — four features per pass
 *
 * fwd, per (row i, class c): v = v2 = 0; for each 4 features v += Z[i, j..j+1] · A[c, j..j+1] and
 *   v2 += Z[i, j+2..j+3] · A[c, j+2..j+3]; then B[ptr] = (v + v2)[0] + (v + v2)[1]; ptr += 8.
 * grad, per (row i, class c): v = splat(A[ptr]); ptr += 8; for each 4 features
 *   B[c, j..j+1] += v · Z[i, j..j+1] and B[c, j+2..j+3] += v · Z[i, j+2..j+3].
 *
 * test/logistic-kernel.test.ts checks both functions bit for bit against plain-TypeScript loops that
 * sum in the same order, so a wrong opcode or immediate fails a test.
 */

// ---- LEB128 (the integer encoding of the WebAssembly binary format) ----

export const uleb = (v: number): number[] => {
  const o: number[] = [];
  do {
    let b = v & 0x7f;
    v >>>= 7;
    if (v) b |= 0x80;
    o.push(b);
  } while (v);
  return o;
};

export const sleb = (v: number): number[] => {
  const o: number[] = [];
  for (;;) {
    const b = v & 0x7f;
    v >>= 7;
    if ((v === 0 && !(b & 0x40)) || (v === -1 && b & 0x40)) {
      o.push(b);
      return o;
    }
    o.push(b | 0x80);
  }
};

// ---- Opcodes ----

const I32 = 0x7f;
const V128 = 0x7b;
const VOID = 0x40;
const BLOCK = 0x02;
const LOOP = 0x03;
const BR = 0x0c;
const BR_IF = 0x0d;
const END = 0x0b;
const I32_EQZ = 0x45;
const I32_LT_S = 0x48;
const I32_ADD = 0x6a;
const I32_SUB = 0x6b;
const I32_SHL = 0x74;
const F64_ADD = 0xa0;
/** Memory immediates: log2 of the alignment, then the constant offset. */
const f64Load = (off: number) => [0x2b, 3, off];
const f64Store = (off: number) => [0x39, 3, off];
const get = (l: number) => [0x20, l];
const set = (l: number) => [0x21, l];
const i32 = (v: number) => [0x41, ...sleb(v)];
const simd = (op: number, ...imm: number[]) => [0xfd, ...uleb(op), ...imm];
const v128Load = (off: number) => simd(0x00, 4, off);
const v128Store = (off: number) => simd(0x0b, 4, off);
const V128_ZERO = simd(0x0c, ...new Array<number>(16).fill(0));
const v128Load64Zero = (off: number) => simd(0x5d, 3, off);
const F64X2_PROMOTE_LOW_F32X4 = simd(0x5f);
const F64X2_SPLAT = simd(0x14);
const f64x2ExtractLane = (lane: number) => simd(0x21, lane);
const F64X2_ADD = simd(0xf0);
const F64X2_MUL = simd(0xf2);

// ---- Locals: parameters 0–5, then i32 locals 6–11 and v128 locals 12–13 ----

const [Z, N, DP, A, K, B, I, C, J, ZROW, ROW, PTR, V, V2] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13];
const LOCALS = [0x02, 6, I32, 2, V128];

/** local l += expr (i32). */
const addTo = (l: number, ...expr: number[]) => [...get(l), ...expr, I32_ADD, ...set(l)];
/** local l << s (i32). */
const shl = (l: number, s: number) => [...get(l), ...i32(s), I32_SHL];
/** promote_low(load64_zero(zRow + 4j + off)): the two float32 features at j + off/4 as an f64x2. */
const zPair = (off: number) => [
  ...get(ZROW),
  ...shl(J, 2),
  I32_ADD,
  ...v128Load64Zero(off),
  ...F64X2_PROMOTE_LOW_F32X4,
];
/** row + 8j: the address of the float64 weight (fwd) or gradient (grad) at feature j. */
const rowAddr = () => [...get(ROW), ...shl(J, 3), I32_ADD];

// ---- Loop emitters ----

/** for (zRow = Z, i = n; i != 0; i--, zRow += 4·dp) body */
const rows = (body: number[]) => [
  ...get(Z),
  ...set(ZROW),
  ...get(N),
  ...set(I),
  ...[BLOCK, VOID, LOOP, VOID],
  ...[...get(I), I32_EQZ, BR_IF, 1],
  ...body,
  ...addTo(ZROW, ...shl(DP, 2)),
  ...[...get(I), ...i32(1), I32_SUB, ...set(I)],
  ...[BR, 0, END, END],
];

/** do { body; j += 4 } while (j < dp) */
const cols = (body: number[]) => [
  ...i32(0),
  ...set(J),
  ...[LOOP, VOID],
  ...body,
  ...addTo(J, ...i32(4)),
  ...[...get(J), ...get(DP), I32_LT_S, BR_IF, 0, END],
];

/** do { body; row += 8·dp; c++ } while (c < k), starting at row = start */
const classes = (start: number, body: number[]) => [
  ...get(start),
  ...set(ROW),
  ...i32(0),
  ...set(C),
  ...[LOOP, VOID],
  ...body,
  ...addTo(ROW, ...shl(DP, 3)),
  ...addTo(C, ...i32(1)),
  ...[...get(C), ...get(K), I32_LT_S, BR_IF, 0, END],
];

// ---- fwd: B[i·k + c] = Z[i, :] · A[c, :] ----

/** acc += Z[i, j + off/8 ..] · A[c, j + off/8 ..] for the two lanes at byte offset `off` of the weight row. */
const fwdMulAdd = (acc: number, off: number) => [
  ...get(acc),
  ...zPair(off / 2),
  ...rowAddr(),
  ...v128Load(off),
  ...F64X2_MUL,
  ...F64X2_ADD,
  ...set(acc),
];

/** B[ptr] = (v + v2)[0] + (v + v2)[1]; ptr += 8 */
const fwdStoreDot = () => [
  ...get(PTR),
  ...[...get(V), ...get(V2), ...F64X2_ADD, ...set(V)],
  ...[...get(V), ...f64x2ExtractLane(0), ...get(V), ...f64x2ExtractLane(1), F64_ADD],
  ...f64Store(0),
  ...addTo(PTR, ...i32(8)),
];

const fwdBody = () => [
  ...LOCALS,
  ...get(B),
  ...set(PTR),
  ...rows(
    classes(A, [
      ...[...V128_ZERO, ...set(V), ...V128_ZERO, ...set(V2)],
      ...cols([...fwdMulAdd(V, 0), ...fwdMulAdd(V2, 16)]),
      ...fwdStoreDot(),
    ]),
  ),
  END,
];

// ---- grad: B[c, :] += A[i·k + c] · Z[i, :] ----

/** B[c, j + off/8 ..] += v · Z[i, j + off/8 ..] for the two lanes at byte offset `off` of the gradient row. */
const gradMulAdd = (off: number) => [
  ...rowAddr(),
  ...rowAddr(),
  ...v128Load(off),
  ...get(V),
  ...zPair(off / 2),
  ...F64X2_MUL,
  ...F64X2_ADD,
  ...v128Store(off),
];

/** v = splat(A[ptr]); ptr += 8 */
const gradLoadResidual = () => [
  ...get(PTR),
  ...f64Load(0),
  ...F64X2_SPLAT,
  ...set(V),
  ...addTo(PTR, ...i32(8)),
];

const gradBody = () => [
  ...LOCALS,
  ...get(A),
  ...set(PTR),
  ...rows(classes(B, [...gradLoadResidual(), ...cols([...gradMulAdd(0), ...gradMulAdd(16)])])),
  END,
];

// ---- Module ----

const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];
const name = (s: string) => [...uleb(s.length), ...Array.from(s, (ch) => ch.charCodeAt(0))];
const fn = (body: number[]) => [...uleb(body.length), ...body];

/** The module's bytes: header, type, function, memory, export and code sections (see the file header). */
export function kernelModuleBytes(): Uint8Array {
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00], // "\0asm", version 1
    ...section(1, [1, 0x60, 6, I32, I32, I32, I32, I32, I32, 0]),
    ...section(3, [2, 0, 0]),
    ...section(5, [1, 0, 1]),
    ...section(7, [3, ...name("mem"), 2, 0, ...name("fwd"), 0, 0, ...name("grad"), 0, 1]),
    ...section(10, [2, ...fn(fwdBody()), ...fn(gradBody())]),
  ]);
}

// ---- Instances ----

export type KernelFn = (z: number, n: number, dp: number, a: number, k: number, b: number) => void;
/** The slice of the WebAssembly JS API used here (the project's `lib` has no WebAssembly types). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: Record<string, unknown> };
}
const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
let kernelModule: object | null | undefined;

function getKernelModule(): object | null {
  if (kernelModule === undefined) {
    let mod: object | null = null;
    try {
      const bytes = kernelModuleBytes();
      if (wasm?.validate(bytes)) mod = new wasm.Module(bytes);
    } catch {
      mod = null;
    }
    kernelModule = mod;
  }
  return kernelModule;
}

export interface KernelInstance {
  mem: WasmMemory;
  fwd: KernelFn;
  grad: KernelFn;
}

/** A fresh instance with its own memory, or null when WebAssembly SIMD is unavailable. */
export function instantiateKernels(): KernelInstance | null {
  const mod = getKernelModule();
  if (!mod) return null;
  const { exports } = new (wasm as WasmApi).Instance(mod);
  return { mem: exports.mem as WasmMemory, fwd: exports.fwd as KernelFn, grad: exports.grad as KernelFn };
}

/** Largest wasm memory we ask for; beyond it (or when a grow fails) the plain-JS objective is used. */
const MAX_KERNEL_BYTES = 2 ** 31;

/**
 * Wasm memory holding the standardized data (n×dp float32) and the per-evaluation buffers for `kk`
 * weight rows: weights (kk×dp), logits/residuals (n×kk) and gradient (kk×dp), all float64.
 */
export class KernelWorkspace {
  readonly dp: number;
  /** n×dp float32 view of the data; columns d..dp-1 must stay 0. Write rows here before fitting. */
  readonly z: Float32Array;
  readonly w: Float64Array;
  readonly r: Float64Array;
  readonly g: Float64Array;
  private readonly offs: { z: number; w: number; r: number; g: number };
  private readonly fwdFn: KernelFn;
  private readonly gradFn: KernelFn;

  private constructor(
    readonly n: number,
    readonly d: number,
    readonly kk: number,
    inst: KernelInstance,
  ) {
    this.dp = Math.ceil(d / 4) * 4;
    const z = 0;
    const w = z + n * this.dp * 4;
    const r = w + kk * this.dp * 8;
    const g = r + n * kk * 8;
    const end = g + kk * this.dp * 8;
    this.offs = { z, w, r, g };
    const pages = Math.ceil(end / 65536);
    if (pages > 1) inst.mem.grow(pages - 1);
    const buf = inst.mem.buffer;
    this.z = new Float32Array(buf, z, n * this.dp);
    this.w = new Float64Array(buf, w, kk * this.dp);
    this.r = new Float64Array(buf, r, n * kk);
    this.g = new Float64Array(buf, g, kk * this.dp);
    this.fwdFn = inst.fwd;
    this.gradFn = inst.grad;
  }

  /** A workspace, or null when WebAssembly SIMD is unavailable or the data is too large for it. */
  static create(n: number, d: number, kk: number): KernelWorkspace | null {
    const dp = Math.ceil(d / 4) * 4;
    if (!getKernelModule() || n * dp * 4 + (2 * kk * dp + n * kk) * 8 > MAX_KERNEL_BYTES) return null;
    try {
      const inst = instantiateKernels();
      return inst && new KernelWorkspace(n, d, kk, inst);
    } catch {
      return null; // memory.grow refused
    }
  }

  /** r = Z · wᵀ (n×kk) from the weight rows currently in `w`. */
  forward(): void {
    this.fwdFn(this.offs.z, this.n, this.dp, this.offs.w, this.kk, this.offs.r);
  }

  /** g = rᵀ · Z (kk×dp) from the residuals currently in `r`. */
  backward(): void {
    this.g.fill(0);
    this.gradFn(this.offs.z, this.n, this.dp, this.offs.r, this.kk, this.offs.g);
  }
}
