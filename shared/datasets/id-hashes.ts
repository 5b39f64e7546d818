import { createHash } from "node:crypto";

/**
 * Repeated ids among many rows in 8 bytes a row, not a Map of every id: each id's 52-bit hash goes
 * in a growing array; after the pass, a sort finds equal hashes and only those ids are compared.
 */
export class IdHashes {
  private hashes = new Float64Array(1024);
  private n = 0;

  static of(id: string): number {
    const h = createHash("sha256").update(id).digest();
    return h.readUIntBE(0, 6) * 16 + (h[6] >> 4);
  }

  add(id: string): void {
    if (this.n === this.hashes.length) {
      const grown = new Float64Array(this.hashes.length * 2);
      grown.set(this.hashes);
      this.hashes = grown;
    }
    this.hashes[this.n++] = IdHashes.of(id);
  }

  /** Hashes seen more than once (usually none). */
  repeated(): Set<number> {
    const sorted = this.hashes.subarray(0, this.n).sort();
    const out = new Set<number>();
    for (let i = 1; i < sorted.length; i++) if (sorted[i] === sorted[i - 1]) out.add(sorted[i]);
    return out;
  }
}
