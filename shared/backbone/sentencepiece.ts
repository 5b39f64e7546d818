/**
 * Unigram sentencepiece tokenizer reproducing, id for id, the one the Universal Sentence Encoder
 * lite ships with (TF.js `universal-sentence-encoder`, as repackaged by `@energetic-ai/embeddings`).
 * The model was trained on that tokenizer's output, so parity matters more than textbook
 * correctness: its quirks are reproduced on purpose and called out where they happen.
 *
 * The reference algorithm, over a vocabulary of `[piece, score]` pairs (the shipped vocabulary has
 * seven `null` scores, all on pieces with `:`; the reference's `null + best` makes them 0):
 * - text → NFKC; if non-empty, prefix `▁` and turn every U+0020 (only that one: tabs and newlines
 *   stay as they are) into `▁`; then split into code points;
 * - the first `reservedCount` (6) entries (`�`, `<s>`, `</s>`, extra ids) are never matched; a later
 *   duplicate piece shadows an earlier one;
 * - at each position every vocabulary piece starting there is a lattice edge; only when none does,
 *   one code point becomes an unknown edge (id 0, score 0);
 * - Viterbi maximizes the summed score, but a best score of exactly 0 means "unset", so the next
 *   candidate replaces it whatever its score, and an unreachable start counts as score 0; ties go
 *   to the later candidate (the one starting further right);
 * - the back-trace steps by the UTF-16 length of the chosen piece (the reference's `.length`),
 *   not its code-point count; the two agree on every piece without astral characters;
 * - runs of unknown ids collapse to one.
 *
 * The model's inputs are a sparse batch: `indices` `[[sentence, position]…]` and `values` (the ids
 * as they are: no offset), both int64; an empty text contributes no entries.
 */
import { endianness } from "node:os";
import { ValidationError } from "../errors.ts";

const SPACE_MARK = 0x2581;
const DEFAULT_RESERVED = 6;
const LITTLE_ENDIAN = endianness() === "LE";

export interface SparseBatch {
  /** `[nnz, 2]` row-major `(sentence, position)` pairs. */
  indices: BigInt64Array;
  /** `[nnz]` piece ids. */
  values: BigInt64Array;
  /** Dense shape `[texts.length, longest encoding]`. */
  shape: [number, number];
}

export interface SentencepieceOptions {
  /** Leading vocabulary entries that never match text (control symbols). */
  reservedCount?: number;
}

interface BuildNode {
  children: Map<number, BuildNode>;
  piece: number;
  score: number;
}

export class SentencepieceTokenizer {
  readonly size: number;
  // Trie edges in one open-addressing hash keyed by (parent, code point): one probe on average,
  // where a binary search over the hundreds of children of "▁" or a letter costs ~10 branches.
  // The root's BMP children also get a direct table, the first step from every position.
  private readonly edgeParent: Int32Array;
  private readonly edgeCp: Int32Array;
  private readonly edgeChild: Int32Array;
  private readonly edgeMask: number;
  private readonly edgeShift: number;
  private readonly rootBmp: Int32Array;
  private readonly nodePiece: Int32Array;
  private readonly nodeScore: Float64Array;
  /** UTF-16 length of every piece: the back-trace step (see the module comment). */
  private readonly pieceLen16: Int32Array;
  // Scratch buffers reused across calls, grown on demand.
  private cps = new Int32Array(256);
  private best = new Float64Array(257);
  private words = new Int32Array(257);
  private out = new Int32Array(256);

  private constructor(pieces: readonly (readonly [string, number | null])[], reservedCount: number) {
    this.size = pieces.length;
    this.pieceLen16 = new Int32Array(pieces.length);
    const root: BuildNode = { children: new Map(), piece: -1, score: 0 };
    let nodeCount = 1;
    for (let i = 0; i < pieces.length; i++) {
      const [piece] = pieces[i];
      this.pieceLen16[i] = piece.length;
      if (i < reservedCount) continue;
      let node = root;
      for (const ch of piece) {
        const cp = ch.codePointAt(0) as number;
        let next = node.children.get(cp);
        if (next === undefined) {
          next = { children: new Map(), piece: -1, score: 0 };
          node.children.set(cp, next);
          nodeCount++;
        }
        node = next;
      }
      if (node !== root) {
        node.piece = i;
        // `null + best` is `best` in the reference: a null score counts as 0.
        node.score = pieces[i][1] ?? 0;
      }
    }
    let bits = 4;
    while (1 << bits < 2 * nodeCount) bits++;
    const slots = 1 << bits;
    this.edgeMask = slots - 1;
    this.edgeShift = 32 - bits;
    this.edgeParent = new Int32Array(slots).fill(-1);
    this.edgeCp = new Int32Array(slots);
    this.edgeChild = new Int32Array(slots);
    this.nodePiece = new Int32Array(nodeCount);
    this.nodeScore = new Float64Array(nodeCount);
    this.rootBmp = new Int32Array(0x10000).fill(-1);
    const queue: BuildNode[] = [root];
    for (let k = 0; k < queue.length; k++) {
      const node = queue[k];
      this.nodePiece[k] = node.piece;
      this.nodeScore[k] = node.score;
      for (const [cp, child] of node.children) {
        const id = queue.length;
        queue.push(child);
        if (k === 0 && cp < 0x10000) this.rootBmp[cp] = id;
        let h = edgeHash(k, cp, this.edgeShift);
        while (this.edgeParent[h] !== -1) h = (h + 1) & this.edgeMask;
        this.edgeParent[h] = k;
        this.edgeCp[h] = cp;
        this.edgeChild[h] = id;
      }
    }
  }

  /** Builds from `[piece, score]` pairs in id order (the USE `vocab.json` layout). */
  static fromVocab(
    pieces: readonly (readonly [string, number | null])[],
    opts: SentencepieceOptions = {},
  ): SentencepieceTokenizer {
    if (!Array.isArray(pieces) || pieces.length === 0) {
      throw new ValidationError("a sentencepiece vocabulary needs at least the unknown piece", {
        field: "pieces",
      });
    }
    const reservedCount = opts.reservedCount ?? DEFAULT_RESERVED;
    if (!Number.isInteger(reservedCount) || reservedCount < 0) {
      throw new ValidationError("reservedCount must be a non-negative integer", {
        field: "reservedCount",
      });
    }
    for (let i = 0; i < pieces.length; i++) {
      const entry = pieces[i];
      if (
        !Array.isArray(entry) ||
        typeof entry[0] !== "string" ||
        !(entry[1] === null || (typeof entry[1] === "number" && Number.isFinite(entry[1])))
      ) {
        throw new ValidationError(
          `vocabulary entry ${i} must be [piece: string, score: finite number | null]`,
          {
            field: `pieces[${i}]`,
          },
        );
      }
    }
    // The back-trace steps by the unknown piece's length; an empty one would never terminate.
    if (pieces[0][0].length === 0) {
      throw new ValidationError("the unknown piece (id 0) must not be empty", { field: "pieces[0]" });
    }
    return new SentencepieceTokenizer(pieces, reservedCount);
  }

  /** Piece ids for one text; the empty text (after NFKC) gives `[]`. */
  encode(text: string): number[] {
    const n = this.encodeInto(text);
    const ids = new Array<number>(n);
    for (let i = 0; i < n; i++) ids[i] = this.out[i];
    return ids;
  }

  /** The sparse int64 batch the model's `indices`/`values` inputs take. */
  toSparseBatch(texts: readonly string[]): SparseBatch {
    const encoded: Int32Array[] = new Array(texts.length);
    let nnz = 0;
    let longest = 0;
    for (let s = 0; s < texts.length; s++) {
      if (typeof texts[s] !== "string") {
        throw new ValidationError(`text ${s} is not a string`, { field: `texts[${s}]` });
      }
      const n = this.encodeInto(texts[s]);
      encoded[s] = this.out.slice(0, n);
      nnz += n;
      if (n > longest) longest = n;
    }
    const indices = new BigInt64Array(nnz * 2);
    const values = new BigInt64Array(nnz);
    if (LITTLE_ENDIAN) {
      // Every number here is a non-negative int32: write the low words through an Int32 view
      // (the zero-filled high words are already right) instead of boxing a BigInt per entry.
      const idx32 = new Int32Array(indices.buffer);
      const val32 = new Int32Array(values.buffer);
      let k = 0;
      for (let s = 0; s < encoded.length; s++) {
        const ids = encoded[s];
        for (let p = 0; p < ids.length; p++, k++) {
          idx32[4 * k] = s;
          idx32[4 * k + 2] = p;
          val32[2 * k] = ids[p];
        }
      }
      return { indices, values, shape: [texts.length, longest] };
    }
    let k = 0;
    for (let s = 0; s < encoded.length; s++) {
      const ids = encoded[s];
      const row = BigInt(s);
      for (let p = 0; p < ids.length; p++, k++) {
        indices[2 * k] = row;
        indices[2 * k + 1] = BigInt(p);
        values[k] = BigInt(ids[p]);
      }
    }
    return { indices, values, shape: [texts.length, longest] };
  }

  /** Encodes into `this.out`, returning the id count. */
  private encodeInto(text: string): number {
    const normalized = text.normalize("NFKC");
    if (normalized.length === 0) return 0;
    this.ensure(normalized.length + 1);
    const cps = this.cps;
    // Code points as `for…of` yields them: surrogate pairs joined, lone surrogates kept as units.
    let n = 0;
    cps[n++] = SPACE_MARK;
    for (let i = 0; i < normalized.length; ) {
      const c = normalized.codePointAt(i) as number;
      i += c > 0xffff ? 2 : 1;
      cps[n++] = c === 0x20 ? SPACE_MARK : c;
    }

    const best = this.best;
    const words = this.words;
    best.fill(0, 0, n + 1);
    words.fill(0, 0, n + 1);
    const { edgeParent, edgeCp, edgeChild, edgeMask, edgeShift, rootBmp, nodePiece, nodeScore } = this;
    // Forward relaxation in increasing start order feeds every end position its candidates in the
    // same order as the reference's per-end loop, so ties and the "0 means unset" rule resolve alike.
    for (let s = 0; s < n; s++) {
      const base = best[s];
      let matched = false;
      let node = -1;
      for (let k = s; k < n; k++) {
        const cp = cps[k];
        if (k === s && cp < 0x10000) {
          node = rootBmp[cp];
        } else {
          const parent = k === s ? 0 : node;
          node = -1;
          for (let h = edgeHash(parent, cp, edgeShift); edgeParent[h] !== -1; h = (h + 1) & edgeMask) {
            if (edgeParent[h] === parent && edgeCp[h] === cp) {
              node = edgeChild[h];
              break;
            }
          }
        }
        if (node < 0) break;
        const piece = nodePiece[node];
        if (piece >= 0) {
          matched = true;
          const score = nodeScore[node] + base;
          const e = k + 1;
          if (best[e] === 0 || score >= best[e]) {
            best[e] = score;
            words[e] = piece;
          }
        }
      }
      if (!matched) {
        const score = 0 + base;
        const e = s + 1;
        if (best[e] === 0 || score >= best[e]) {
          best[e] = score;
          words[e] = 0;
        }
      }
    }

    // Back-trace right to left into the tail of `out`, collapsing unknown runs as the reference
    // does (on the reversed sequence, which collapses the same runs).
    const out = this.out;
    const len16 = this.pieceLen16;
    let w = n;
    let prevUnknown = false;
    for (let pos = n; pos > 0; ) {
      const id = words[pos];
      if (!(prevUnknown && id === 0)) out[--w] = id;
      prevUnknown = id === 0;
      pos -= len16[id];
    }
    const count = n - w;
    if (w > 0) out.copyWithin(0, w, n);
    return count;
  }

  private ensure(n: number): void {
    if (this.cps.length >= n) return;
    const size = Math.max(n, this.cps.length * 2);
    this.cps = new Int32Array(size);
    this.out = new Int32Array(size);
    this.best = new Float64Array(size + 1);
    this.words = new Int32Array(size + 1);
  }
}

/** Multiplicative hash; the top `32 - shift` bits are the best mixed, so those index the table. */
function edgeHash(parent: number, cp: number, shift: number): number {
  return Math.imul(Math.imul(parent, 0x9e3779b1) ^ cp, 0x85ebca77) >>> shift;
}
