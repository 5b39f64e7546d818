/**
 * Child process of the import memory test: imports `<dir>/e.npy` + `<dir>/r.jsonl` into a FsStore
 * under `<dir>/store` and prints `{rows, maxRssMb}`. Run under a small `--max-old-space-size`.
 */
import { join } from "node:path";
import { FsStore } from "../../shared/store/fs.ts";

const [dir, module = "../../shared/embed/import-embeddings.ts"] = process.argv.slice(2);
const { importEmbeddings } = (await import(
  module
)) as typeof import("../../shared/embed/import-embeddings.ts");
const r = await importEmbeddings(new FsStore(join(dir, "store")), "big", {
  backbone: "ext",
  npyPath: join(dir, "e.npy"),
  rowsPath: join(dir, "r.jsonl"),
});
console.log(JSON.stringify({ rows: r.rows, maxRssMb: Math.round(process.resourceUsage().maxRSS / 1024) }));
