import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import fc from "fast-check";
import { ingestDataset, readDatasetRows, readDatasetStatus } from "../shared/datasets/ingest.ts";
import { MAX_TEXT_CHARS, parseManifest } from "../shared/datasets/manifest.ts";
import { ValidationError } from "../shared/errors.ts";
import { keys } from "../shared/layout.ts";
import { tinyPlatform } from "./helpers/platform.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const reasons = (m: Awaited<ReturnType<typeof parseManifest>>) =>
  m.rejected.map((r) => [r.line, r.field ?? null]);

describe("manifest parsing", () => {
  test("JSONL: each bad row is reported by line and field, good rows proceed", async () => {
    const text = [
      '{"id": "a", "text": "fine", "label": "x", "split": "train"}',
      "",
      '{"text": 42}',
      "not json",
      '{"id": "a", "text": "dup id"}',
      '{"lable": "x", "text": "typo"}',
      '{"text": "two", "image": "b.png"}',
      "{}",
      '{"text": "bad split", "split": "dev"}',
      `{"text": "${"x".repeat(MAX_TEXT_CHARS + 1)}"}`,
      '{"text": "   "}',
      "[1, 2]",
      '{"image": "../etc/passwd"}',
      '{"text": "multi", "label": ["a", "b"]}',
      '{"id": 7, "text": "numeric id", "label": 3}',
    ].join("\n");
    const m = await parseManifest(enc(text), "jsonl");
    assert.equal(m.total, 14);
    assert.deepEqual(
      m.rows.map((r) => [r.id, r.line]),
      [
        ["a", 1],
        ["line-14", 14],
        ["7", 15],
      ],
    );
    assert.deepEqual(reasons(m), [
      [3, "text"],
      [4, null],
      [5, "id"],
      [6, "lable"],
      [7, "image"],
      [8, "text"],
      [9, "split"],
      [10, "text"],
      [11, "text"],
      [12, null],
      [13, "image"],
    ]);
    assert.match(
      m.rejected[3].reason,
      /unknown field 'lable' \(valid: id, text, image, audio, label, split\)/,
    );
    assert.match(m.rejected[2].reason, /duplicate id "a" \(first seen on line 1\)/);
    assert.match(m.rejected[7].reason, /longer than 100000 characters/);
  });

  test("label lists may be empty; a label named __proto__ is refused", async () => {
    const text = [
      '{"text": "a", "label": []}',
      '{"text": "b", "label": "__proto__"}',
      '{"text": "c", "label": ["x", "__proto__"]}',
    ].join("\n");
    const m = await parseManifest(enc(text), "jsonl");
    assert.deepEqual(
      m.rows.map((r) => r.label),
      [[]],
    );
    assert.deepEqual(
      m.rejected.map((r) => r.line),
      [2, 3],
    );
    assert.ok(m.rejected.every((r) => /__proto__/.test(r.reason)));
  });

  test("invalid UTF-8 rejects only its own line; BOM and CRLF are handled", async () => {
    const bytes = new Uint8Array([
      0xef,
      0xbb,
      0xbf,
      ...enc('{"text": "ok"}\r\n{"text": "'),
      0xc3,
      0x28,
      ...enc('"}\r\n{"text": "caf\u00e9"}\r\n'),
    ]);
    const m = await parseManifest(bytes, "jsonl");
    assert.deepEqual(
      m.rows.map((r) => r.text),
      ["ok", "café"],
    );
    assert.deepEqual(m.rejected, [{ line: 2, reason: "line is not valid UTF-8" }]);
  });

  test("CSV: header columns, quoted multi-line fields, empty cells, column counts", async () => {
    const csv =
      'id,text,label,split\n1,"line one\nline two",pos,train\n2,,neg,test\n3,"a, b",neg,dev\n4,short\n5,"x ""quoted""",pos,test\n';
    const m = await parseManifest(enc(csv), "csv");
    assert.deepEqual(
      m.rows.map((r) => [r.id, r.line, r.text]),
      [
        ["1", 2, "line one\nline two"],
        ["5", 7, 'x "quoted"'],
      ],
    );
    assert.deepEqual(reasons(m), [
      [4, "text"],
      [5, "split"],
      [6, null],
    ]);
    assert.match(m.rejected[2].reason, /expected 4 columns, found 2/);
  });

  test("CSV with an unknown, repeated, malformed or binary header fails as a whole, naming its line", async () => {
    const fails = (csv: string | Uint8Array, message: RegExp, field = "line 1") =>
      assert.rejects(
        () => parseManifest(typeof csv === "string" ? enc(csv) : csv, "csv"),
        (err: unknown) => {
          assert.ok(err instanceof ValidationError, String(err));
          assert.match(err.message, message);
          assert.equal(err.field, field);
          return true;
        },
      );
    await fails("id,txt\n1,a\n", /unknown column 'txt'/);
    await fails("text,label,text\na,b,c\n", /repeats column 'text'/);
    await fails('\n\nid,"text\n1,a\n', /CSV header is malformed/, "line 3");
    await fails('text,"la"bel"\na,b\n', /CSV header is malformed/);
    await fails(new Uint8Array([0x74, 0x65, 0xff, 0xfe, 0x0a, 0x61, 0x0a]), /CSV header is not valid UTF-8/);
  });

  test("CSV: a record with broken quoting is rejected with its line; the rest proceeds", async () => {
    const csv =
      'id,text,label\n1,good one,pos\n2,"bad "quote" here,neg\n3,fine,pos\n4,"unclosed,neg\n5,after,pos\n6,"two\nlines",neg\n';
    const m = await parseManifest(enc(csv), "csv");
    assert.deepEqual(
      m.rows.map((r) => [r.id, r.line, r.text]),
      [
        ["1", 2, "good one"],
        ["3", 4, "fine"],
        ["5", 6, "after"],
        ["6", 7, "two\nlines"],
      ],
    );
    assert.deepEqual(
      m.rejected.map((r) => r.line),
      [3, 5],
    );
    for (const r of m.rejected) assert.match(r.reason, /^malformed CSV: /);
    assert.equal(m.total, 6);
  });

  test("CSV: an unterminated quote rejects its line only", async () => {
    const m = await parseManifest(enc('text\n"unterminated\nnext\n'), "csv");
    assert.deepEqual(
      m.rejected.map((r) => [r.line, r.reason]),
      [[2, "malformed CSV: a quote is never closed"]],
    );
    assert.deepEqual(
      m.rows.map((r) => r.text),
      ["next"],
    );
  });

  test("fuzz: any bytes give accepted + rejected = total, never a crash", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 400 }), async (bytes) => {
        const m = await parseManifest(bytes, "jsonl");
        assert.equal(m.rows.length + m.rejected.length, m.total);
        for (const r of m.rejected) assert.ok(r.line >= 1 && r.reason.length > 0);
      }),
      { numRuns: 300 },
    );
    // CSV: any body under a valid header; a broken header is a ValidationError, never a crash.
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 400 }), async (bytes) => {
        const m = await parseManifest(new Uint8Array([...enc("id,text,label\n"), ...bytes]), "csv");
        assert.equal(m.rows.length + m.rejected.length, m.total);
        for (const r of m.rejected) assert.ok(r.line >= 2 && r.reason.length > 0);
      }),
      { numRuns: 300 },
    );
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 200 }), async (bytes) => {
        try {
          await parseManifest(bytes, "csv");
        } catch (err) {
          assert.ok(err instanceof ValidationError, String(err));
          assert.ok(err.field, "names the field");
        }
      }),
      { numRuns: 300 },
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            text: fc.option(fc.string(), { nil: undefined }),
            label: fc.option(fc.string(), { nil: undefined }),
          }),
          { maxLength: 30 },
        ),
        async (rows) => {
          const m = await parseManifest(enc(rows.map((r) => JSON.stringify(r)).join("\n")), "jsonl");
          assert.equal(m.total, rows.length);
          assert.equal(m.rows.length + m.rejected.length, rows.length);
        },
      ),
    );
  });
});

describe("ingest", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
  before(async () => {
    ctx = await tinyPlatform();
  });
  after(() => ctx.cleanup());

  test("writes rows and a status with counts, labels, splits and rejections", async () => {
    const status = await ctx.platform.putManifest(
      "d1",
      "jsonl",
      '{"text": "a", "label": "x", "split": "train"}\n{"text": "b", "label": "y"}\n{"text": 1}\n',
    );
    assert.equal(status.state, "ingested");
    assert.deepEqual(status.rows, { total: 3, accepted: 2, rejected: 1 });
    assert.deepEqual(status.labels, { x: 1, y: 1 });
    assert.deepEqual(status.splits, { train: 1, test: 0, unspecified: 1 });
    assert.equal(status.rejected[0].line, 3);
    assert.equal((await readDatasetRows(ctx.store, "d1"))?.rows.length, 2);
    assert.equal((await readDatasetStatus(ctx.store, "d1"))?.version, status.version);
  });

  test("a wholly invalid re-upload fails clearly and keeps the previous rows", async () => {
    const before = await readDatasetRows(ctx.store, "d1");
    await assert.rejects(
      ctx.platform.putManifest("d1", "jsonl", '{"txt": "a"}\n{"text": ""}\n'),
      (err: unknown) => {
        assert.ok(err instanceof ValidationError);
        assert.match(err.message, /none of the 2 rows is valid/);
        assert.equal(err.field, "line 1");
        return true;
      },
    );
    assert.deepEqual(await readDatasetRows(ctx.store, "d1"), before);
    const status = await readDatasetStatus(ctx.store, "d1");
    assert.equal(status?.state, "rejected");
    assert.equal(status?.rejected.length, 2);
    await assert.rejects(ctx.platform.putManifest("d2", "csv", ""), /manifest is empty/);
  });

  test("rows referencing missing files are rejected; present files are accepted", async () => {
    await ctx.store.put(keys.datasetFile("pics", "cats/1.png"), new Uint8Array([1, 2, 3]));
    const status = await ctx.platform.putManifest(
      "pics",
      "jsonl",
      '{"image": "cats/1.png", "label": "cat"}\n{"image": "cats/2.png", "label": "cat"}\n',
    );
    assert.equal(status.rows.accepted, 1);
    assert.match(status.rejected[0].reason, /file not found: datasets\/pics\/files\/cats\/2.png/);
    assert.deepEqual(status.modalities, { image: 1 });
  });

  test("a file path using the store's reserved markers rejects that row only", async () => {
    const status = await ctx.platform.putManifest(
      "reserved",
      "jsonl",
      '{"image": "a.~tmp-123"}\n{"image": "b.png.~lock"}\n{"text": "fine"}\n',
    );
    assert.equal(status.rows.accepted, 1);
    assert.deepEqual(
      status.rejected.map((r) => [r.line, r.field]),
      [
        [1, "image"],
        [2, "image"],
      ],
    );
  });

  test("a manifest key that does not belong to the dataset is refused", async () => {
    await assert.rejects(ingestDataset(ctx.store, "d1", { manifestKey: keys.manifest("d2", "jsonl") }), {
      name: "ValidationError",
    });
  });
});
