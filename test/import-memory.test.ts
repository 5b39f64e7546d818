/**
 * An embeddings import streams: its vectors a chunk and a shard at a time, its rows a line at a
 * time, and the documents that grow with it (the version's rows, the import record) spooled to
 * local files and stored from there. Run in a child whose JavaScript heap is far smaller than
 * the import, which the whole-file version (every row parsed, then every row document built in
 * memory) could not finish.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createWriteStream } from "node:fs";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { encodeNpy } from "../shared/cache/npy.ts";
import { readDatasetRows } from "../shared/datasets/ingest.ts";
import { FsStore } from "../shared/store/fs.ts";
import { tempDir } from "./helpers/platform.ts";

const run = promisify(execFile);
const ROWS = 250_000;
const DIM = 24;
/** The child's old-space limit: a tenth of what the import's rows and documents take whole. */
const HEAP_MB = 48;

let dir: string;
before(async () => {
  dir = await tempDir("headstart-import-memory-");
  const v = new Float32Array(ROWS * DIM);
  for (let i = 0; i < v.length; i++) v[i] = Math.sin(i);
  await writeFile(join(dir, "e.npy"), encodeNpy(v, ROWS, DIM));
  const out = createWriteStream(join(dir, "r.jsonl"));
  for (let i = 0; i < ROWS; i++) {
    const line = `${JSON.stringify({ id: `row-${i}`, label: i % 3 ? "a" : "b", text: `some text for row ${i}` })}\n`;
    if (!out.write(line)) await new Promise<void>((r) => out.once("drain", () => r()));
  }
  await new Promise<void>((r, j) => out.end((err?: Error | null) => (err ? j(err) : r())));
});
after(() => rm(dir, { recursive: true, force: true }));

test(`a ${ROWS}-row import (~40 MiB of .npy and rows) finishes with a ${HEAP_MB} MB heap`, async () => {
  const child = join(import.meta.dirname, "helpers", "import-child.ts");
  const { stdout } = await run(
    process.execPath,
    [`--max-old-space-size=${HEAP_MB}`, "--import", "tsx", child, dir],
    { maxBuffer: 1 << 20 },
  );
  const result = JSON.parse(stdout.trim().split("\n").at(-1)!);
  assert.equal(result.rows, ROWS);
  // The import is complete and readable: every row, in order, with its vector's address.
  const store = new FsStore(join(dir, "store"));
  const rows = (await readDatasetRows(store, "big"))!.rows;
  assert.equal(rows.length, ROWS);
  assert.equal(rows[ROWS - 1].id, `row-${ROWS - 1}`);
  assert.match(String(rows[0].vector), /^[0-9a-f]{64}$/);
});
