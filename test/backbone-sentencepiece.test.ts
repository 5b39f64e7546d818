import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { SentencepieceTokenizer } from "../shared/backbone/sentencepiece.ts";
import { ValidationError } from "../shared/errors.ts";

// The USE layout: id 0 is the unknown piece, ids 1..5 are control symbols that never match.
const RESERVED: [string, number][] = [
  ["\ufffd", 0],
  ["<s>", 0],
  ["</s>", 0],
  ["extra_token_id_1", 0],
  ["extra_token_id_2", 0],
  ["extra_token_id_3", 0],
];

const V = {
  mark: 6,
  a: 7,
  b: 8,
  ab: 9,
  markAb: 10,
  x: 11,
  y: 12,
  xy: 13,
  fi: 14,
  eAcute: 15,
  smile: 16,
} as const;

const vocab: [string, number][] = [
  ...RESERVED,
  ["\u2581", -2],
  ["a", -1],
  ["b", -1],
  ["ab", -1.5],
  ["\u2581ab", -1],
  ["x", -1],
  ["y", -1],
  ["xy", -2],
  ["fi", -0.5],
  ["\u00e9", -1],
  ["\u{1F600}", -1],
  ["f", -1],
  ["i", -1],
];

const tok = SentencepieceTokenizer.fromVocab(vocab);

describe("SentencepieceTokenizer.encode (hand-made vocabulary)", () => {
  it("marks the start and every U+0020 with ▁", () => {
    assert.deepEqual(tok.encode(""), []);
    assert.deepEqual(tok.encode(" "), [V.mark, V.mark]);
    assert.deepEqual(tok.encode("a"), [V.mark, V.a]);
    // Runs of spaces give one ▁ each; "▁ab" (-1) beats "▁"+"ab" (-3.5) and "▁"+"a"+"b" (-4).
    assert.deepEqual(tok.encode("ab  ab"), [V.markAb, V.mark, V.markAb]);
    assert.deepEqual(tok.encode(" ab"), [V.mark, V.markAb]);
  });

  it("picks the highest-scoring segmentation", () => {
    // ▁ab(-1)+ab(-1.5) = -2.5 beats ▁ab+a+b (-3) and ▁+ab+ab (-5).
    assert.deepEqual(tok.encode("abab"), [V.markAb, V.ab]);
  });

  it("breaks ties toward the candidate starting further right", () => {
    // "▁xy": ▁+xy = -4 and ▁+x+y = -4; the reference keeps the later (shorter) candidate.
    assert.deepEqual(tok.encode("xy"), [V.mark, V.x, V.y]);
  });

  it("maps characters no piece starts with to id 0, collapsing runs", () => {
    assert.deepEqual(tok.encode("z"), [V.mark, 0]);
    assert.deepEqual(tok.encode("zzz"), [V.mark, 0]);
    assert.deepEqual(tok.encode("zz a zz"), [V.mark, 0, V.mark, V.a, V.mark, 0]);
    // Tabs and newlines are not spaces to the reference: they stay as (unknown) characters.
    assert.deepEqual(tok.encode("a\tb\nx"), [V.mark, V.a, 0, V.b, 0, V.x]);
    // Astral characters are one position each; an unknown one steps back by `�`'s length (1).
    assert.deepEqual(tok.encode("a\u{1F680}b"), [V.mark, V.a, 0, V.b]);
  });

  it("never matches the reserved control pieces", () => {
    assert.deepEqual(tok.encode("<s>"), [V.mark, 0]);
  });

  it("normalizes with NFKC before marking spaces", () => {
    assert.deepEqual(tok.encode("\ufb01"), [V.mark, V.fi]); // ligature fi
    assert.deepEqual(tok.encode("\uff41\uff42"), [V.markAb]); // fullwidth ａｂ
    assert.deepEqual(tok.encode("e\u0301"), [V.mark, V.eAcute]); // e + combining acute → é
    assert.deepEqual(tok.encode("a\u00a0b"), [V.mark, V.a, V.mark, V.b]); // no-break space → ▁
    assert.deepEqual(tok.encode("\u3000"), [V.mark, V.mark]); // ideographic space → U+0020 → ▁
  });

  it("steps back by a piece's UTF-16 length, as the reference does", () => {
    // "▁a😀" is 3 code points; the 😀 piece has length 2, so the back-trace skips "a".
    assert.deepEqual(tok.encode("a\u{1F600}"), [V.mark, V.smile]);
    assert.deepEqual(tok.encode("\u{1F600}"), [V.smile]);
  });

  it("gives the same ids after scratch buffers grow, and for long inputs", () => {
    const long = Array.from({ length: 20_000 }, () => "ab").join(" ");
    const ids = tok.encode(long);
    assert.equal(ids.length, 20_000);
    assert.ok(ids.every((id) => id === V.markAb));
    assert.deepEqual(tok.encode("abab"), [V.markAb, V.ab]);
    assert.deepEqual(tok.encode("x"), [V.mark, V.x]);
  });
});

describe("SentencepieceTokenizer reference quirks", () => {
  it("treats a best score of exactly 0 as unset", () => {
    // "▁a" reaches position 2 with score 0, which the reference reads as "nothing yet", so the
    // worse ▁+a (-4) replaces it.
    const t = SentencepieceTokenizer.fromVocab([...RESERVED, ["\u2581a", 0], ["\u2581", -1], ["a", -3]]);
    assert.deepEqual(t.encode("a"), [7, 8]);
  });

  it("scores an unreachable start as 0 and back-traces through it as unknown", () => {
    // "▁ab": only "ab" starts at 1 (no "a"), so no unknown edge there and position 2 is never
    // reached; "b" from it scores 0 + -1 and beats ▁+ab (-11); position 2 then reads as id 0.
    const t = SentencepieceTokenizer.fromVocab([...RESERVED, ["\u2581", -1], ["ab", -10], ["b", -1]]);
    assert.deepEqual(t.encode("ab"), [6, 0, 8]);
  });

  it("lets a later duplicate piece shadow an earlier one and counts null scores as 0", () => {
    const t = SentencepieceTokenizer.fromVocab([
      ...RESERVED,
      ["\u2581", -1],
      ["a", -5],
      ["a", -1],
      [":", null],
      ["\u2581:", -1.5],
    ]);
    assert.deepEqual(t.encode("a"), [6, 8]);
    // ▁+: scores -1 + 0 and beats ▁: (-1.5) only because null counts as 0.
    assert.deepEqual(t.encode(":"), [6, 9]);
    // "a:" → ▁+a (-2) then ":" (0): id 9 is matched, not unknown.
    assert.deepEqual(t.encode("a:"), [6, 8, 9]);
  });

  it("honours a custom reserved count", () => {
    const pieces: [string, number][] = [
      ["<unk>", 0],
      ["\u2581", -1],
      ["a", -1],
    ];
    assert.deepEqual(SentencepieceTokenizer.fromVocab(pieces, { reservedCount: 1 }).encode("a"), [1, 2]);
    // With the default 6 reserved entries nothing matches: one collapsed unknown.
    assert.deepEqual(SentencepieceTokenizer.fromVocab(pieces).encode("aaaaaaaaaa"), [0]);
  });
});

describe("SentencepieceTokenizer.toSparseBatch", () => {
  it("lays out indices [[sentence, position]…] and values as the package feeds the model", () => {
    const batch = tok.toSparseBatch(["ab", "", "z x", "abab"]);
    assert.deepEqual(Array.from(batch.values, Number), [V.markAb, V.mark, 0, V.mark, V.x, V.markAb, V.ab]);
    assert.deepEqual(Array.from(batch.indices, Number), [0, 0, 2, 0, 2, 1, 2, 2, 2, 3, 3, 0, 3, 1]);
    assert.deepEqual(batch.shape, [4, 4]);
  });

  it("handles an empty batch and all-empty texts", () => {
    const empty = tok.toSparseBatch([]);
    assert.equal(empty.values.length, 0);
    assert.deepEqual(empty.shape, [0, 0]);
    const blanks = tok.toSparseBatch(["", ""]);
    assert.equal(blanks.indices.length, 0);
    assert.deepEqual(blanks.shape, [2, 0]);
  });
});

describe("SentencepieceTokenizer validation", () => {
  it("rejects malformed vocabularies and texts, naming the field", () => {
    const field = (fn: () => unknown, name: string) =>
      assert.throws(fn, (e: unknown) => e instanceof ValidationError && e.field === name);
    field(() => SentencepieceTokenizer.fromVocab([]), "pieces");
    field(
      () =>
        SentencepieceTokenizer.fromVocab([
          ["\ufffd", 0],
          ["a", Number.NaN],
        ]),
      "pieces[1]",
    );
    field(
      () =>
        SentencepieceTokenizer.fromVocab([
          ["\ufffd", 0],
          [7 as unknown as string, -1],
        ]),
      "pieces[1]",
    );
    field(() => SentencepieceTokenizer.fromVocab([["", 0]]), "pieces[0]");
    field(() => SentencepieceTokenizer.fromVocab(vocab, { reservedCount: -1 }), "reservedCount");
    field(() => tok.toSparseBatch(["a", 3 as unknown as string]), "texts[1]");
  });
});

describe("SentencepieceTokenizer against the package's tokenizer (committed fixture)", () => {
  // Produced by running @energetic-ai/embeddings' own tokenizer code over a small vocabulary
  // (scripts/check-sentencepiece.ts --write-fixture); the 8k vocabulary itself is not committed.
  const fixture = JSON.parse(
    readFileSync(new URL("./fixtures/sentencepiece/reference.json", import.meta.url), "utf8"),
  ) as { vocab: [string, number | null][]; cases: { text: string; ids: number[] }[] };

  it("reproduces every expected id sequence", () => {
    const t = SentencepieceTokenizer.fromVocab(fixture.vocab);
    assert.ok(fixture.cases.length >= 100);
    for (const c of fixture.cases) assert.deepEqual(t.encode(c.text), c.ids, JSON.stringify(c.text));
  });

  it("batches the fixture texts into the same ids, row by row", () => {
    const t = SentencepieceTokenizer.fromVocab(fixture.vocab);
    const batch = t.toSparseBatch(fixture.cases.map((c) => c.text));
    const rows: number[][] = fixture.cases.map(() => []);
    for (let k = 0; k < batch.values.length; k++) {
      const [s, p] = [Number(batch.indices[2 * k]), Number(batch.indices[2 * k + 1])];
      assert.equal(p, rows[s].length, `entry ${k}: positions run 0, 1, … within a row`);
      rows[s].push(Number(batch.values[k]));
    }
    assert.deepEqual(
      rows,
      fixture.cases.map((c) => c.ids),
    );
    assert.deepEqual(batch.shape, [
      fixture.cases.length,
      Math.max(...fixture.cases.map((c) => c.ids.length)),
    ]);
  });
});
