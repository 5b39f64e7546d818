/**
 * Child process of the manifest memory test: uploads `<dir>/<manifest>` into a FsStore under
 * `<dir>/store` as dataset `big`, ingests it, and prints `{accepted, rejected, version}`. Run
 * under a small `--max-old-space-size`.
 */
import { join } from "node:path";
import { ingestDataset, uploadDataset } from "../../shared/datasets/ingest.ts";
import { FsStore } from "../../shared/store/fs.ts";

const [dir, manifest] = process.argv.slice(2) as [string, string];
const store = new FsStore(join(dir, "store"));
const { manifestKey } = await uploadDataset(store, "big", join(dir, manifest));
const status = await ingestDataset(store, "big", { manifestKey });
console.log(
  JSON.stringify({ accepted: status.rows.accepted, rejected: status.rows.rejected, version: status.version }),
);
