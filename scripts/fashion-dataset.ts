/**
 * Fashion-MNIST (Debian's `dataset-fashion-mnist`, installed by `scripts/system-deps.sh --bench`) as
 * a dataset of PNG files in a store, for the benchmarks that run the real batch stage on images
 * (`npm run bench:images-stage`, `npm run bench -- --sections embed`).
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import sharp from "sharp";
import { readDatasetRows } from "../shared/datasets/ingest.ts";
import { ValidationError } from "../shared/errors.ts";
import { keys } from "../shared/layout.ts";
import type { Platform } from "../shared/platform.ts";
import { FASHION_CLASSES, readIdx } from "./idx.ts";

const SPLITS = [
  { split: "train", prefix: "train" },
  { split: "test", prefix: "t10k" },
] as const;

/** Runs `fn(0..count-1)` with at most `width` calls in flight. */
async function pool(width: number, count: number, fn: (i: number) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < count) await fn(next++);
    }),
  );
}

export interface FashionDatasetOptions {
  /** The folder of Debian's dataset-fashion-mnist (its four gzipped IDX files). */
  source: string;
  /** At most this many images of each split (the first ones). */
  limit?: number;
  log?: (line: string) => void;
}

export const FASHION_SOURCE = "/usr/share/datasets/fashion-mnist";

/**
 * Fashion-MNIST's images as PNG files of `dataset` (`train/<i>.png`, `test/<i>.png`) with a JSONL
 * manifest of the official split, ingested; skipped when the store already holds that manifest.
 * Returns the number of rows.
 */
export async function putFashionMnist(platform: Platform, dataset: string, opts: FashionDatasetOptions) {
  const note = opts.log ?? (() => {});
  const { source, limit } = opts;
  const store = platform.store;
  const parts = [];
  if (!existsSync(join(source, "train-images-idx3-ubyte.gz"))) {
    throw new ValidationError(
      `no Fashion-MNIST in ${source}: install it with \`sudo bash scripts/system-deps.sh --bench\` (Debian dataset-fashion-mnist) or pass --source`,
      { field: "source" },
    );
  }
  for (const { split, prefix } of SPLITS) {
    const images = await readIdx(join(source, `${prefix}-images-idx3-ubyte.gz`));
    const labels = await readIdx(join(source, `${prefix}-labels-idx1-ubyte.gz`));
    const [n, h, w] = images.dims;
    if (images.dims.length !== 3 || h !== 28 || w !== 28 || labels.dims.join() !== String(n)) {
      throw new ValidationError(
        `${prefix}: images ${images.dims.join("×")} and labels ${labels.dims.join("×")} are not n×28×28 and n`,
        { field: prefix },
      );
    }
    const bad = labels.data.findIndex((y) => y >= FASHION_CLASSES.length);
    if (bad >= 0)
      throw new ValidationError(`${prefix} label ${bad} is ${labels.data[bad]}`, { field: prefix });
    parts.push({
      split,
      images: images.data,
      labels: labels.data,
      n: Math.min(n as number, limit ?? Infinity),
    });
  }
  const rows = parts.flatMap((p) =>
    Array.from({ length: p.n }, (_, i) => ({
      id: `${p.split}-${i}`,
      image: `${p.split}/${i}.png`,
      label: FASHION_CLASSES[p.labels[i] as number] as string,
      split: p.split,
    })),
  );
  const manifest = `${rows.map((r) => JSON.stringify(r)).join("\n")}\n`;
  const existing = await store.get(keys.manifest(dataset, "jsonl"));
  const ingested = await readDatasetRows(store, dataset);
  if (
    existing &&
    Buffer.from(existing.body).toString("utf8") === manifest &&
    ingested?.rows.length === rows.length
  ) {
    note(`dataset ${dataset}: ${rows.length} images already in the store`);
    return rows.length;
  }
  const t0 = performance.now();
  for (const p of parts) {
    // Several encodes in flight: sharp runs them on libuv's pool, not on this thread.
    await pool(8, p.n, async (i) => {
      const px = Buffer.from(p.images.buffer, p.images.byteOffset + i * 784, 784);
      const png = await sharp(px, { raw: { width: 28, height: 28, channels: 1 } })
        .png()
        .toBuffer();
      await store.put(keys.datasetFile(dataset, `${p.split}/${i}.png`), png);
    });
  }
  const status = await platform.putManifest(dataset, "jsonl", manifest);
  if (status.rows.accepted !== rows.length) {
    throw new ValidationError(`dataset ${dataset}: ${status.rows.rejected} rows rejected`, {
      field: "manifest",
      details: { rejected: status.rejected },
    });
  }
  note(
    `dataset ${dataset}: wrote ${rows.length} PNG files and ingested them in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  return rows.length;
}
