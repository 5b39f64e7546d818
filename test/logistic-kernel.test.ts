import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  instantiateKernels,
  type KernelInstance,
  KernelWorkspace,
  kernelModuleBytes,
  sleb,
  uleb,
} from "../shared/learn/logistic-kernel-wasm.ts";
import { gaussian, mulberry32 } from "../shared/learn/split.ts";

// The kernels sum in a fixed order, so the references below sum in the same order and every value is
// compared bit for bit: a wrong opcode, lane, offset or loop bound shows up as a mismatch.

/** fwd's order: lanes j%4 = 0,1 accumulate in v, lanes 2,3 in v2, then (v + v2)[0] + (v + v2)[1]. */
function fwdReference(Z: Float32Array, n: number, dp: number, A: Float64Array, k: number): Float64Array {
  const B = new Float64Array(n * k);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < k; c++) {
      let v0 = 0;
      let v1 = 0;
      let w0 = 0;
      let w1 = 0;
      for (let j = 0; j < dp; j += 4) {
        v0 += Z[i * dp + j] * A[c * dp + j];
        v1 += Z[i * dp + j + 1] * A[c * dp + j + 1];
        w0 += Z[i * dp + j + 2] * A[c * dp + j + 2];
        w1 += Z[i * dp + j + 3] * A[c * dp + j + 3];
      }
      B[i * k + c] = v0 + w0 + (v1 + w1);
    }
  }
  return B;
}

/** grad's order: rows in order, B[c, j] += A[i·k + c] · Z[i, j]. */
function gradReference(Z: Float32Array, n: number, dp: number, A: Float64Array, k: number, B0: Float64Array) {
  const B = B0.slice();
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < k; c++) {
      const a = A[i * k + c];
      for (let j = 0; j < dp; j++) B[c * dp + j] += a * Z[i * dp + j];
    }
  }
  return B;
}

/** Z (n×dp float32, columns d..dp-1 zero) and float64 arrays of the given length, from a seed. */
function randomData(n: number, d: number, seed: number) {
  const rand = mulberry32(seed);
  const dp = Math.ceil(d / 4) * 4;
  const Z = new Float32Array(n * dp);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) Z[i * dp + j] = gaussian(rand);
  const f64 = (len: number) => Float64Array.from({ length: len }, () => gaussian(rand));
  return { dp, Z, f64 };
}

/** The slice of the WebAssembly JS API used here (the project's `lib` has no WebAssembly types). */
const wasm = (
  globalThis as unknown as {
    WebAssembly: {
      validate(bytes: Uint8Array): boolean;
      Module: (new (
        bytes: Uint8Array,
      ) => object) & {
        exports(m: object): { name: string; kind: string }[];
        imports(m: object): unknown[];
      };
    };
  }
).WebAssembly;

const GUARD = 64; // bytes of sentinel around every region
const SENTINEL = -12345.678;

/** Lays out regions of the given byte sizes in the instance's memory with sentinel guards around each. */
function layout(inst: KernelInstance, sizes: number[]) {
  const offs: number[] = [];
  let at = GUARD;
  for (const s of sizes) {
    offs.push(at);
    at += Math.ceil(s / 16) * 16 + GUARD;
  }
  const pages = Math.ceil(at / 65536) - inst.mem.buffer.byteLength / 65536;
  if (pages > 0) inst.mem.grow(pages);
  new Float64Array(inst.mem.buffer, 0, at / 8).fill(SENTINEL);
  const guardsIntact = () => {
    const all = new Float64Array(inst.mem.buffer, 0, at / 8);
    let prevEnd = 0;
    for (let r = 0; r <= offs.length; r++) {
      const start = r < offs.length ? offs[r] : at;
      for (let b = Math.ceil(prevEnd / 8) * 8; b < start; b += 8) if (all[b / 8] !== SENTINEL) return false;
      if (r < offs.length) prevEnd = offs[r] + sizes[r];
    }
    return true;
  };
  return { offs, guardsIntact };
}

const SHAPES: [n: number, d: number, k: number][] = [
  [0, 3, 2],
  [1, 1, 1],
  [1, 4, 3],
  [7, 3, 2],
  [23, 5, 3],
  [23, 13, 5],
  [16, 8, 1],
  [31, 17, 4],
];

describe("LEB128 encoders", () => {
  it("encode unsigned and signed integers as the WebAssembly spec's examples", () => {
    assert.deepEqual(uleb(0), [0]);
    assert.deepEqual(uleb(127), [0x7f]);
    assert.deepEqual(uleb(128), [0x80, 0x01]);
    assert.deepEqual(uleb(624485), [0xe5, 0x8e, 0x26]);
    assert.deepEqual(sleb(0), [0]);
    assert.deepEqual(sleb(1), [1]);
    assert.deepEqual(sleb(63), [0x3f]);
    assert.deepEqual(sleb(64), [0xc0, 0x00]);
    assert.deepEqual(sleb(-1), [0x7f]);
    assert.deepEqual(sleb(-64), [0x40]);
    assert.deepEqual(sleb(-65), [0xbf, 0x7f]);
    assert.deepEqual(sleb(-123456), [0xc0, 0xbb, 0x78]);
  });
});

describe("logistic-regression WebAssembly SIMD kernels", () => {
  it("form a valid module exporting mem, fwd and grad", () => {
    const bytes = kernelModuleBytes();
    assert.ok(wasm.validate(bytes), "WebAssembly SIMD is available on Node 20");
    const mod = new wasm.Module(bytes);
    assert.deepEqual(
      wasm.Module.exports(mod).map((e) => `${e.name}:${e.kind}`),
      ["mem:memory", "fwd:function", "grad:function"],
    );
    assert.deepEqual(wasm.Module.imports(mod), []);
    const inst = instantiateKernels();
    assert.ok(inst);
    assert.equal(inst.mem.buffer.byteLength, 65536);
  });

  for (const [n, d, k] of SHAPES) {
    it(`fwd: B = Z·Aᵀ bit for bit (n=${n}, d=${d}, k=${k}), writing nothing else`, () => {
      const inst = instantiateKernels();
      assert.ok(inst);
      const { dp, Z, f64 } = randomData(n, d, n * 1000 + d * 10 + k);
      const A = f64(k * dp);
      const { offs, guardsIntact } = layout(inst, [Z.byteLength, A.byteLength, n * k * 8]);
      const [zOff, aOff, bOff] = offs;
      new Float32Array(inst.mem.buffer, zOff, Z.length).set(Z);
      new Float64Array(inst.mem.buffer, aOff, A.length).set(A);
      inst.fwd(zOff, n, dp, aOff, k, bOff);
      const got = Array.from(new Float64Array(inst.mem.buffer, bOff, n * k));
      assert.deepEqual(got, Array.from(fwdReference(Z, n, dp, A, k)));
      assert.deepEqual(Array.from(new Float64Array(inst.mem.buffer, aOff, A.length)), Array.from(A));
      assert.ok(guardsIntact(), "fwd wrote outside B");
    });

    it(`grad: B += Aᵀ·Z bit for bit (n=${n}, d=${d}, k=${k}), writing nothing else`, () => {
      const inst = instantiateKernels();
      assert.ok(inst);
      const { dp, Z, f64 } = randomData(n, d, n * 1000 + d * 10 + k + 1);
      const A = f64(n * k);
      const B0 = f64(k * dp);
      const { offs, guardsIntact } = layout(inst, [Z.byteLength, A.byteLength, B0.byteLength]);
      const [zOff, aOff, bOff] = offs;
      new Float32Array(inst.mem.buffer, zOff, Z.length).set(Z);
      new Float64Array(inst.mem.buffer, aOff, A.length).set(A);
      new Float64Array(inst.mem.buffer, bOff, B0.length).set(B0);
      inst.grad(zOff, n, dp, aOff, k, bOff);
      const got = Array.from(new Float64Array(inst.mem.buffer, bOff, B0.length));
      assert.deepEqual(got, Array.from(gradReference(Z, n, dp, A, k, B0)));
      assert.deepEqual(Array.from(new Float64Array(inst.mem.buffer, aOff, A.length)), Array.from(A));
      assert.ok(guardsIntact(), "grad wrote outside B");
    });
  }

  it("the workspace runs both over its own layout (forward, then backward from zero)", () => {
    const [n, d, k] = [29, 11, 3];
    const ws = KernelWorkspace.create(n, d, k);
    assert.ok(ws);
    const { dp, Z, f64 } = randomData(n, d, 99);
    assert.equal(ws.dp, dp);
    ws.z.set(Z);
    const W = f64(k * dp);
    for (let c = 0; c < k; c++) W.fill(0, c * dp + d, c * dp + dp); // padded weight columns stay 0
    ws.w.set(W);
    ws.forward();
    assert.deepEqual(Array.from(ws.r), Array.from(fwdReference(Z, n, dp, W, k)));
    const R = f64(n * k);
    ws.r.set(R);
    ws.g.fill(7); // backward starts from zero, whatever was there
    ws.backward();
    assert.deepEqual(Array.from(ws.g), Array.from(gradReference(Z, n, dp, R, k, new Float64Array(k * dp))));
  });
});
