/**
 * A prediction id back to its input. Batch predictions (`<job>:<row id>`) always resolve: the job
 * names the dataset version it scored. Online ones (`p-<24 hex>`) resolve only while the head keeps
 * their input (`capture`, texts only); by default it keeps none, and the correction must carry the
 * input (always, for an image or audio). A batch image or audio row resolves to its file in the dataset.
 */
import { readDatasetRows } from "../datasets/ingest.ts";
import { NotFoundError, UnsupportedError, ValidationError } from "../errors.ts";
import { readHeadVersion } from "../heads/version.ts";
import { assertName, assertOnlinePredictionId, keys } from "../layout.ts";
import { readBatchJob } from "../predictions/job.ts";
import type { ObjectStore } from "../store/types.ts";
import { readCapture } from "./capture.ts";

export async function resolvePrediction(
  store: ObjectStore,
  head: string,
  predictionId: string,
): Promise<string | { imageKey: string } | { audioKey: string }> {
  const at = predictionId.indexOf(":");
  if (at < 0) return resolveOnline(store, head, assertOnlinePredictionId(predictionId));
  return resolveBatch(store, head, predictionId.slice(0, at), predictionId.slice(at + 1));
}

async function resolveOnline(store: ObjectStore, head: string, predictionId: string): Promise<string> {
  const found = await readCapture(store, head, predictionId);
  if (found) return found.text;
  const live = await readHeadVersion(store, head).catch(() => undefined);
  const mode = live?.head.capture ?? "none";
  const why =
    mode === "none"
      ? `head ${head} keeps no inputs of online predictions (capture none, the default)`
      : `head ${head} did not keep the input of prediction ${predictionId} (capture ${mode})`;
  const send = `send the input with the label: {"input": "…", "label": "…"}, or for an image {"input": {"image": "<base64>"}, "label": "…"} (audio: {"input": {"audio": "<base64>"}, …})`;
  throw new ValidationError(`${why} (images and audio are never kept); ${send}`, {
    field: "predictionId",
  });
}

async function resolveBatch(
  store: ObjectStore,
  head: string,
  job: string,
  rowId: string,
): Promise<string | { imageKey: string } | { audioKey: string }> {
  const found = await readBatchJob(store, assertName("job", job, "predictionId"));
  if (!found)
    throw new NotFoundError(`batch job ${job} (of prediction ${job}:${rowId})`, { field: "predictionId" });
  if (found.value.head !== head) {
    throw new ValidationError(
      `prediction ${job}:${rowId} was made by head ${found.value.head}, not ${head}`,
      {
        field: "predictionId",
      },
    );
  }
  const { dataset, datasetVersion } = found.value.input;
  const row = (await readDatasetRows(store, dataset, datasetVersion))?.rows.find((r) => r.id === rowId);
  if (!row) throw new NotFoundError(`row ${rowId} of batch job ${job}`, { field: "predictionId" });
  if (row.image !== undefined) return { imageKey: keys.datasetFile(dataset, row.image) };
  if (row.audio !== undefined) return { audioKey: keys.datasetFile(dataset, row.audio) };
  if (row.text === undefined) {
    throw new UnsupportedError(
      "feedback on rows of ready embeddings is not supported; only text, image and audio rows",
      {
        field: "predictionId",
      },
    );
  }
  return row.text;
}
