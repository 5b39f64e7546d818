import assert from "node:assert/strict";
import { test } from "node:test";
import { randomHex } from "../shared/random-hex.ts";

test("randomHex: the asked length in hex, never repeated across pool refills", () => {
  const seen = new Set<string>();
  // 2,000 × 12 bytes is about six 4 KiB pools.
  for (let i = 0; i < 2000; i++) {
    const id = randomHex(12);
    assert.match(id, /^[0-9a-f]{24}$/);
    assert.ok(!seen.has(id), `repeated ${id}`);
    seen.add(id);
  }
  assert.match(randomHex(4096), /^[0-9a-f]{8192}$/);
  assert.throws(() => randomHex(0), /bytes must be an integer in 1\.\.4096/);
  assert.throws(() => randomHex(4097), /bytes must be an integer/);
});
