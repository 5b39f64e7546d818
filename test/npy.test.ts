import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { decodeNpy, encodeNpy } from "../shared/cache/npy.ts";

describe(".npy", () => {
  test("round-trips float32 matrices exactly, header aligned to 64 bytes", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 20 }), fc.integer({ min: 1, max: 20 }), (rows, cols) => {
        const data = Float32Array.from({ length: rows * cols }, (_, i) => Math.fround(Math.sin(i) * 1e3));
        const bytes = encodeNpy(data, rows, cols);
        const headerLen = new DataView(bytes.buffer).getUint16(8, true);
        assert.equal((10 + headerLen) % 64, 0);
        assert.equal(bytes[10 + headerLen - 1], 0x0a);
        const back = decodeNpy(bytes);
        assert.equal(back.rows, rows);
        assert.equal(back.cols, cols);
        assert.deepEqual(back.data, data);
      }),
    );
  });

  test("the header is what numpy writes for float32 C-order 2-D arrays", () => {
    const bytes = encodeNpy(new Float32Array([1, 2, 3, 4, 5, 6]), 2, 3);
    const header = new TextDecoder().decode(
      bytes.subarray(10, 10 + new DataView(bytes.buffer).getUint16(8, true)),
    );
    assert.match(header, /^\{'descr': '<f4', 'fortran_order': False, 'shape': \(2, 3\), \} *\n$/);
    assert.deepEqual(Array.from(bytes.subarray(0, 8)), [0x93, 78, 85, 77, 80, 89, 1, 0]);
  });

  test("rejects what it cannot read", () => {
    assert.throws(() => encodeNpy(new Float32Array(5), 2, 3), /shape is 2x3/);
    assert.throws(() => decodeNpy(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])), /bad magic/);
    const good = encodeNpy(new Float32Array(6), 2, 3);
    assert.throws(() => decodeNpy(good.subarray(0, good.length - 4)), /truncated/);
    const f8 = good.slice();
    f8[f8.indexOf(0x34, 10)] = 0x38; // "<f4" becomes "<f8"
    assert.throws(() => decodeNpy(f8), /unsupported \.npy header/);
  });
});
