/**
 * The data sets `npm run bench:active` simulates labelling on, each as embedded vectors with a
 * train part (the pools are drawn from it) and a test part:
 *   - imdb: IMDB reviews on glove-100d, 2 classes, from the bench store `npm run bench` builds;
 *   - fashion: Fashion-MNIST on the default image backbone (or `backbone`), 10 classes, the first `trainImages` images of
 *     the train file and the first `testImages` of the test file, embedded once and cached under
 *     `<store>/quality` (the folder the other data-quality benches cache their vectors in).
 */
import { existsSync } from "node:fs";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import sharp from "sharp";
import { builtInEmbedder } from "../shared/backbone/registry.ts";
import type { EmbedInput } from "../shared/backbone/spec.ts";
import { DEFAULT_BACKBONES, loadConfig } from "../shared/config.ts";
import { loadEmbeddedDataset } from "../shared/embed/embedded-dataset.ts";
import { ValidationError } from "../shared/errors.ts";
import { unitRows } from "../shared/learn/active.ts";
import { Platform } from "../shared/platform.ts";
import { FsStore } from "../shared/store/fs.ts";
import { readIdx } from "./idx.ts";

export interface ActiveTask {
  name: string;
  backbone: string;
  dim: number;
  /** Number of classes. */
  k: number;
  X: Float32Array;
  /** X with each row scaled to unit length: what k-center measures distances on. */
  unit: Float32Array;
  y: Int32Array;
  /** Row indices the pools are drawn from, and the ones the test rows are drawn from. */
  train: number[];
  test: number[];
}

function task(name: string, backbone: string, dim: number, k: number, X: Float32Array, y: Int32Array) {
  return { name, backbone, dim, k, X, unit: unitRows(X, y.length, dim), y };
}

export async function imdbTask(store: string): Promise<ActiveTask> {
  const config = loadConfig(process.env, { store, logLevel: "warn" });
  const platform = new Platform(new FsStore(config.store), config);
  const spec = await platform.backbone("glove-100d");
  const data = await loadEmbeddedDataset(platform.store, "imdb", spec).catch((err) => {
    throw new Error(`${(err as Error).message}\n(build the bench store once with \`npm run bench\`)`);
  });
  const y = Int32Array.from(data.rows, (r) => (r.label === "pos" ? 1 : 0));
  const train: number[] = [];
  const test: number[] = [];
  data.rows.forEach((r, i) => {
    (r.split === "test" ? test : train).push(i);
  });
  return { ...task("imdb", "glove-100d", spec.dim, 2, data.vectors, y), train, test };
}

export interface FashionSource {
  /** Folder holding Fashion-MNIST's four idx.gz files. */
  source: string;
  modelsDir: string;
  /** Where the vectors are cached. */
  cacheDir: string;
  trainImages: number;
  testImages: number;
  /** The image backbone (default: the platform's default for images). */
  backbone?: string;
}

/** The first `count` images of one Fashion-MNIST file as PNGs (what the image backbone takes). */
async function fashionImages(source: string, prefix: string, count: number) {
  const images = await readIdx(join(source, `${prefix}-images-idx3-ubyte.gz`));
  const labels = await readIdx(join(source, `${prefix}-labels-idx1-ubyte.gz`));
  const n = Math.min(count, labels.data.length);
  const items: EmbedInput[] = [];
  for (let i = 0; i < n; i++) {
    const px = Buffer.from(images.data.buffer, images.data.byteOffset + i * 784, 784);
    const png = await sharp(px, { raw: { width: 28, height: 28, channels: 1 } })
      .png()
      .toBuffer();
    items.push({ image: new Uint8Array(png) });
  }
  return { items, y: Int32Array.from(labels.data.subarray(0, n)) };
}

export async function fashionTask(s: FashionSource): Promise<ActiveTask> {
  if (!existsSync(join(s.source, "train-images-idx3-ubyte.gz"))) {
    throw new ValidationError(
      `no Fashion-MNIST in ${s.source}: install it with \`sudo bash scripts/system-deps.sh --bench\` (Debian dataset-fashion-mnist) or pass --source`,
      { field: "source" },
    );
  }
  const train = await fashionImages(s.source, "train", s.trainImages);
  const test = await fashionImages(s.source, "t10k", s.testImages);
  const backbone = s.backbone ?? DEFAULT_BACKBONES.image;
  const embedder = await builtInEmbedder(backbone, s.modelsDir);
  const dim = embedder.spec.dim;
  const nTrain = train.y.length;
  const file = join(
    s.cacheDir,
    `active-fashion-${nTrain}-${test.y.length}-${embedder.spec.sha256.slice(0, 16)}.f32`,
  );
  let X: Float32Array;
  if (existsSync(file)) {
    const buf = await readFile(file);
    X = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  } else {
    const items = [...train.items, ...test.items];
    X = new Float32Array(items.length * dim);
    for (let at = 0; at < items.length; at += 256) {
      X.set(await embedder.embed(items.slice(at, at + 256)), at * dim);
      process.stderr.write(`\rembedding Fashion-MNIST: ${Math.min(at + 256, items.length)}/${items.length}`);
    }
    process.stderr.write("\n");
    await mkdir(s.cacheDir, { recursive: true });
    await writeFile(`${file}.tmp`, new Uint8Array(X.buffer));
    await rename(`${file}.tmp`, file);
  }
  const y = new Int32Array(nTrain + test.y.length);
  y.set(train.y);
  y.set(test.y, nTrain);
  return {
    ...task("fashion", backbone, dim, 10, X, y),
    train: Array.from({ length: nTrain }, (_, i) => i),
    test: Array.from({ length: test.y.length }, (_, i) => nTrain + i),
  };
}
