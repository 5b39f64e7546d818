/**
 * A set of sha256 hex digests in 16 bytes each (their first 104 bits, in an open-addressing table),
 * rather than a Set of 64-character strings: a million cached items cost 32 MB, not 150.
 */
export class ShaSet {
  private table = new Float64Array(2 * 1024);
  private size = 0;

  constructor(initial: Iterable<string> = []) {
    for (const sha of initial) this.add(sha);
  }

  private static keys(sha: string): [number, number] {
    // 52 bits each, and never 0 (the empty slot).
    return [Number.parseInt(sha.slice(0, 13), 16) + 1, Number.parseInt(sha.slice(13, 26), 16) + 1];
  }

  /** Adds `sha`; false when it was already there. */
  add(sha: string): boolean {
    if (2 * (this.size + 1) > this.table.length / 2) this.grow();
    const [a, b] = ShaSet.keys(sha);
    if (!this.insert(this.table, a, b)) return false;
    this.size++;
    return true;
  }

  private insert(table: Float64Array, a: number, b: number): boolean {
    const slots = table.length / 2;
    for (let i = a % slots; ; i = (i + 1) % slots) {
      if (table[2 * i] === 0) {
        table[2 * i] = a;
        table[2 * i + 1] = b;
        return true;
      }
      if (table[2 * i] === a && table[2 * i + 1] === b) return false;
    }
  }

  private grow(): void {
    const old = this.table;
    this.table = new Float64Array(old.length * 2);
    for (let i = 0; i < old.length; i += 2) if (old[i] !== 0) this.insert(this.table, old[i], old[i + 1]);
  }
}
