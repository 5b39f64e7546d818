/**
 * Ingest streams: a manifest is read a line at a time (twice: ids first, then rows), and the
 * version's rows are spooled to a local file and stored with `putFile`. Run in a child whose
 * JavaScript heap is far smaller than the manifest, which the whole-file version (the manifest
 * decoded into lines, every row parsed and kept, the rows document built as one string) could
 * not finish.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { readDatasetRows, readDatasetStatus } from "../shared/datasets/ingest.ts";
import { FsStore } from "../shared/store/fs.ts";
import { tempDir } from "./helpers/platform.ts";

const run = promisify(execFile);
const ROWS = 200_000;
/** The child's old-space limit: a fraction of what the manifest takes parsed whole. */
const HEAP_MB = 40;

let dir: string;

async function writeLines(path: string, lines: (i: number) => string, header?: string): Promise<void> {
  const out = createWriteStream(path);
  if (header) out.write(`${header}\n`);
  for (let i = 0; i < ROWS; i++) {
    if (!out.write(`${lines(i)}\n`)) await once(out, "drain");
  }
  await new Promise<void>((r, j) => out.end((err?: Error | null) => (err ? j(err) : r())));
}

const text = (i: number) =>
  `a review of film number ${i}, which was ${i % 3 ? "fine" : "dreadful"} all the way`;

before(async () => {
  dir = await tempDir("headstart-ingest-memory-");
  // ~26 MiB each; row 7 repeats row 3's id and row 11 is not JSON/has too few columns.
  await writeLines(join(dir, "manifest.jsonl"), (i) =>
    i === 11
      ? "not json"
      : JSON.stringify({
          id: `r-${i === 7 ? 3 : i}`,
          text: text(i),
          label: i % 3 ? "pos" : "neg",
          split: i % 5 ? "train" : "test",
        }),
  );
  await writeLines(
    join(dir, "manifest.csv"),
    (i) => (i === 11 ? "only-one-column" : `r-${i === 7 ? 3 : i},"${text(i)}",${i % 3 ? "pos" : "neg"}`),
    "id,text,label",
  );
});
after(() => rm(dir, { recursive: true, force: true }));

for (const manifest of ["manifest.jsonl", "manifest.csv"]) {
  test(`a ${ROWS}-row ${manifest} (~26 MiB) ingests with a ${HEAP_MB} MB heap`, async () => {
    const child = join(import.meta.dirname, "helpers", "ingest-child.ts");
    const { stdout } = await run(
      process.execPath,
      [`--max-old-space-size=${HEAP_MB}`, "--import", "tsx", child, dir, manifest],
      { maxBuffer: 1 << 20 },
    );
    const result = JSON.parse(stdout.trim().split("\n").at(-1)!);
    assert.equal(result.accepted, ROWS - 2);
    assert.equal(result.rejected, 2);
    const store = new FsStore(join(dir, "store"));
    const status = (await readDatasetStatus(store, "big"))!;
    assert.deepEqual(
      status.rejected.map((r) => [r.line, r.field ?? null]),
      manifest.endsWith(".csv")
        ? [
            [9, "id"],
            [13, null],
          ]
        : [
            [8, "id"],
            [12, null],
          ],
    );
    const rows = (await readDatasetRows(store, "big"))!.rows;
    assert.equal(rows.length, ROWS - 2);
    assert.equal(rows.at(-1)!.id, `r-${ROWS - 1}`);
    assert.equal(status.labels!.neg + status.labels!.pos, ROWS - 2);
  });
}
