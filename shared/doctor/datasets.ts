/**
 * Datasets: every `_status.json` parses and its current version's rows exist and hash to the
 * version's name (the version is the sha256 of its rows), so training reads what was ingested.
 */
import { sha256Hex } from "../cache/address.ts";
import { DatasetStatus } from "../datasets/status.ts";
import { keys, parseKey } from "../layout.ts";
import type { ObjectStore } from "../store/types.ts";
import { readChecked } from "./cache.ts";
import type { CheckLog } from "./report.ts";

export async function checkDatasets(store: ObjectStore, log: CheckLog): Promise<void> {
  for (const obj of await store.list("datasets/")) {
    const p = parseKey(obj.key);
    if (p?.kind !== "datasetStatus") continue;
    log.checked++;
    const status = await readChecked(store, obj.key, DatasetStatus, log);
    if (!status?.version) continue;
    const rowsKey = keys.datasetRows(p.dataset, status.version);
    const rows = await store.get(rowsKey);
    if (!rows) log.add(rowsKey, "missing", `the current version of dataset ${p.dataset} has no rows`);
    else if (sha256Hex(rows.body) !== status.version)
      log.add(rowsKey, "corrupt", "sha256 differs from its version");
  }
}
