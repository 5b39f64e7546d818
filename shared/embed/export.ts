/**
 * `headstart export`: one dataset's embeddings as `embeddings.npy` + `rows.jsonl`, in manifest
 * order, for numpy, scikit-learn or anything else. Row i of the file is vector i.
 */
import { promises as fs } from "node:fs";
import { join } from "node:path";
import type { BackboneSpec } from "../backbone/spec.ts";
import { encodeNpy } from "../cache/npy.ts";
import { toJsonl } from "../store/json.ts";
import type { ObjectStore } from "../store/types.ts";
import { loadEmbeddedDataset } from "./embedded-dataset.ts";

export interface ExportResult {
  dataset: string;
  backbone: string;
  rows: number;
  dim: number;
  files: { embeddings: string; rows: string };
}

export async function exportDataset(
  store: ObjectStore,
  dataset: string,
  backbone: BackboneSpec,
  outDir: string,
): Promise<ExportResult> {
  const data = await loadEmbeddedDataset(store, dataset, backbone);
  await fs.mkdir(outDir, { recursive: true });
  const files = { embeddings: join(outDir, "embeddings.npy"), rows: join(outDir, "rows.jsonl") };
  const rows = data.rows.map((r) => ({
    id: r.id,
    ...(r.label === undefined ? {} : { label: r.label }),
    ...(r.split === undefined ? {} : { split: r.split }),
  }));
  // Temp + rename, so a reader never sees an embeddings file without its rows.
  await fs.writeFile(`${files.embeddings}.tmp`, encodeNpy(data.vectors, data.rows.length, data.dim));
  await fs.writeFile(`${files.rows}.tmp`, toJsonl(rows));
  await fs.rename(`${files.embeddings}.tmp`, files.embeddings);
  await fs.rename(`${files.rows}.tmp`, files.rows);
  return { dataset, backbone: backbone.id, rows: data.rows.length, dim: data.dim, files };
}
