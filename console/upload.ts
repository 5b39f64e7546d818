/**
 * Uploading a dataset from the browser through the public API, as `headstart upload` does from a
 * disk: a manifest goes up as it is (`PUT …/manifest`); a labelled folder of images or audio files
 * (`<label>/<file>`, `test/<label>/<file>` for test rows) or a zip of one goes up file by file
 * (`PUT …/files?path=`), then the manifest made from its paths, last, as the commit. Requests go
 * through XMLHttpRequest, the one browser API that reports upload progress.
 */
import { unzipSync } from "fflate";
import { ApiError, apiKey, seg } from "./api.ts";

/** A picked or dropped file with its path below the folder the person chose (`red/1.png`). */
export interface Picked {
  path: string;
  file: Blob;
}

export type Plan =
  | { kind: "manifest"; format: "csv" | "jsonl"; file: Blob; name: string }
  | { kind: "folder"; files: Picked[]; rows: FolderRow[]; skipped: Skipped[] };

/** A folder file's row: `image` or `audio` by its extension, as `headstart ingest <dir>` does. */
export type FolderRow = { id: string; label: string; split?: "test" } & (
  | { image: string }
  | { audio: string }
);
export interface Skipped {
  path: string;
  reason: string;
}

export interface IngestAnswer {
  status: { rows: { accepted: number; rejected: number } };
  job?: { job: string };
}

const IMAGE = /\.(jpe?g|png|webp|gif)$/i;
const AUDIO = /\.(wav|flac|mp3|ogg)$/i;
const TEST_FOLDERS = ["test", "val", "validation"];

/** What was picked: one manifest, one zip (unpacked here), or the files of a folder. */
export function planUpload(picked: Picked[]): Plan {
  if (picked.length === 1) {
    const { path, file } = picked[0];
    if (/\.csv$/i.test(path)) return { kind: "manifest", format: "csv", file, name: path };
    if (/\.(jsonl|ndjson)$/i.test(path)) return { kind: "manifest", format: "jsonl", file, name: path };
  }
  return folderPlan(stripCommonRoot(picked));
}

/** A zip's files, as if its folder had been picked. */
export async function unzip(file: Blob): Promise<Picked[]> {
  const entries = unzipSync(new Uint8Array(await file.arrayBuffer()));
  return Object.entries(entries)
    .filter(([path]) => !path.endsWith("/"))
    .map(([path, bytes]) => ({ path, file: new Blob([bytes]) }));
}

/** A folder picked whole (`shapes/red/1.png`) holds its labels one level down. */
function stripCommonRoot(picked: Picked[]): Picked[] {
  const first = picked[0]?.path.split("/")[0];
  const shared =
    picked.every((p) => p.path.split("/").length >= 2 && p.path.split("/")[0] === first) &&
    picked.some((p) => p.path.split("/").length >= 3);
  return shared ? picked.map((p) => ({ ...p, path: p.path.split("/").slice(1).join("/") })) : picked;
}

/** The folder convention of `headstart ingest <dir>` (shared/datasets/folder-manifest.ts). */
function folderPlan(picked: Picked[]): Plan {
  const files: Picked[] = [];
  const rows: FolderRow[] = [];
  const skipped: Skipped[] = [];
  for (const p of [...picked].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    const parts = p.path.split("/");
    const reason = skipReason(parts);
    if (reason) {
      skipped.push({ path: p.path, reason });
      continue;
    }
    const test = parts.length === 3;
    files.push(p);
    rows.push({
      id: p.path,
      ...(AUDIO.test(p.path) ? { audio: p.path } : { image: p.path }),
      label: parts[parts.length - 2],
      ...(test ? { split: "test" } : {}),
    });
  }
  return { kind: "folder", files, rows, skipped };
}

function skipReason(parts: string[]): string | undefined {
  if (parts.some((s) => s.startsWith("."))) return "hidden file or folder";
  const name = parts[parts.length - 1];
  if (!IMAGE.test(name) && !AUDIO.test(name))
    return "not an image or audio file (.jpg, .jpeg, .png, .webp, .gif, .wav, .flac, .mp3, .ogg)";
  if (parts.length === 2) return undefined;
  if (parts.length === 3 && TEST_FOLDERS.includes(parts[0])) return undefined;
  return parts.length === 1 ? "not in a label folder" : "nested deeper than <label>/<file>";
}

/** One request with upload progress (bytes sent of this body). */
function send(method: string, path: string, body: Blob | string, type: string, onSent: (n: number) => void) {
  return new Promise<unknown>((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, path);
    xhr.setRequestHeader("content-type", type);
    xhr.setRequestHeader("accept", "application/json");
    const key = apiKey.get();
    if (key) xhr.setRequestHeader("x-api-key", key);
    xhr.upload.onprogress = (e) => onSent(e.loaded);
    xhr.onerror = () => reject(new ApiError(0, "network", `${method} ${path} failed: no answer`));
    xhr.onload = () => {
      const data = xhr.responseText ? JSON.parse(xhr.responseText) : undefined;
      if (xhr.status >= 200 && xhr.status < 300) return resolve(data);
      const err = data?.error ?? {};
      const field = err.field ? ` (${err.field})` : "";
      reject(new ApiError(xhr.status, err.code ?? "error", `${err.message ?? xhr.statusText}${field}`));
    };
    xhr.send(body);
  });
}

export interface Progress {
  sent: number;
  total: number;
  files: number;
  of: number;
}

/** Uploads the plan's files (4 at a time), then its manifest; answers the ingest. */
export async function runUpload(
  dataset: string,
  plan: Plan,
  onProgress: (p: Progress) => void,
): Promise<IngestAnswer> {
  const base = `v1/datasets/${seg(dataset)}`;
  if (plan.kind === "manifest") {
    const type = plan.format === "csv" ? "text/csv" : "application/x-ndjson";
    const total = plan.file.size;
    return (await send("PUT", `${base}/manifest`, plan.file, type, (sent) =>
      onProgress({ sent, total, files: 0, of: 1 }),
    )) as IngestAnswer;
  }
  const manifest = `${plan.rows.map((r) => JSON.stringify(r)).join("\n")}\n`;
  const total = plan.files.reduce((n, f) => n + f.file.size, 0) + manifest.length;
  const sent = new Array<number>(plan.files.length).fill(0);
  let done = 0;
  const report = () =>
    onProgress({ sent: sent.reduce((a, b) => a + b, 0), total, files: done, of: plan.files.length });
  let next = 0;
  const worker = async () => {
    while (next < plan.files.length) {
      const i = next++;
      const f = plan.files[i];
      const url = `${base}/files?path=${encodeURIComponent(f.path)}`;
      await send("PUT", url, f.file, "application/octet-stream", (n) => {
        sent[i] = n;
        report();
      });
      sent[i] = f.file.size;
      done++;
      report();
    }
  };
  await Promise.all(Array.from({ length: Math.min(4, plan.files.length) }, worker));
  return (await send("PUT", `${base}/manifest`, manifest, "application/x-ndjson", () =>
    report(),
  )) as IngestAnswer;
}

/** The files of a drop: folders read through the entries API, else the plain files dropped. */
export async function droppedFiles(data: DataTransfer): Promise<Picked[]> {
  const entries = Array.from(data.items)
    .map((i) => i.webkitGetAsEntry?.())
    .filter((e): e is FileSystemEntry => !!e);
  if (entries.length === 0) return Array.from(data.files).map((f) => ({ path: f.name, file: f }));
  const out: Picked[] = [];
  const walk = async (entry: FileSystemEntry, prefix: string): Promise<void> => {
    if (entry.isFile) {
      const file = await new Promise<File>((res, rej) => (entry as FileSystemFileEntry).file(res, rej));
      out.push({ path: prefix + entry.name, file });
      return;
    }
    const reader = (entry as FileSystemDirectoryEntry).createReader();
    for (;;) {
      const batch = await new Promise<FileSystemEntry[]>((res, rej) => reader.readEntries(res, rej));
      if (batch.length === 0) break;
      for (const child of batch) await walk(child, `${prefix}${entry.name}/`);
    }
  };
  for (const e of entries) await walk(e, "");
  return out;
}
