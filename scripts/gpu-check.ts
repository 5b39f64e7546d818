/**
 * The GPU check (scripts/gpu-check.sh runs it): the embedders of the batch stage on IMDB
 * sentences (glove-100d, use-lite-512) and on Fashion-MNIST images (mobilenet-v2-1280; images
 * generated from a fixed seed when Debian's dataset-fashion-mnist is absent), once with the CUDA
 * execution provider and once on CPU, each in its own process; prints items/s for each and the
 * largest absolute vector difference between the two.
 *
 *   node --import tsx scripts/gpu-check.ts [--texts 4000] [--images 2000]
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs, promisify } from "node:util";
import sharp from "sharp";
import { builtInEmbedder } from "../shared/backbone/registry.ts";
import type { EmbedInput } from "../shared/backbone/spec.ts";
import { loadConfig } from "../shared/config.ts";
import { imdbSentences, machine } from "./bench-common.ts";
import { readIdx } from "./idx.ts";

const FASHION = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
const CASES = [
  { backbone: "glove-100d", kind: "texts" },
  { backbone: "use-lite-512", kind: "texts" },
  { backbone: "mobilenet-v2-1280", kind: "images" },
] as const;

async function images(count: number): Promise<EmbedInput[]> {
  let pixels: Uint8Array;
  if (existsSync(FASHION)) {
    pixels = (await readIdx(FASHION)).data as Uint8Array;
  } else {
    pixels = new Uint8Array(count * 784);
    let x = 12345;
    for (let i = 0; i < pixels.length; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      pixels[i] = x >>> 24;
    }
  }
  const out: EmbedInput[] = [];
  for (let i = 0; i < count; i++) {
    const raw = Buffer.from(
      pixels.subarray((i % (pixels.length / 784)) * 784, ((i % (pixels.length / 784)) + 1) * 784),
    );
    out.push({
      image: await sharp(raw, { raw: { width: 28, height: 28, channels: 1 } })
        .png()
        .toBuffer(),
    });
  }
  return out;
}

/** Child: embed every case with one provider, write the vectors, print items/s. */
async function child(provider: "cuda" | "cpu", dir: string, texts: number, imageCount: number) {
  const modelsDir = loadConfig().modelsDir;
  const inputs = {
    texts: (await imdbSentences(texts)).map((text) => ({ text })),
    images: await images(imageCount),
  };
  const rates: Record<string, number> = {};
  for (const c of CASES) {
    const embedder = await builtInEmbedder(c.backbone, modelsDir, {
      session: { executionProviders: provider === "cuda" ? ["cuda"] : ["cpu"] },
    });
    await embedder.embed(inputs[c.kind].slice(0, 64)); // session creation and warm-up
    const t0 = performance.now();
    const vectors = await embedder.embed(inputs[c.kind]);
    rates[c.backbone] = inputs[c.kind].length / ((performance.now() - t0) / 1000);
    await writeFile(join(dir, `${provider}-${c.backbone}.f32`), vectors);
  }
  process.stdout.write(`${JSON.stringify(rates)}\n`);
}

async function main() {
  const { values } = parseArgs({
    options: {
      texts: { type: "string", default: "4000" },
      images: { type: "string", default: "2000" },
      child: { type: "string" },
      dir: { type: "string" },
    },
  });
  const texts = Number(values.texts);
  const imageCount = Number(values.images);
  if (values.child) return child(values.child as "cuda" | "cpu", values.dir!, texts, imageCount);
  const dir = await mkdtemp(join(tmpdir(), "headstart-gpu-check-"));
  try {
    const run = async (provider: string) => {
      const { stdout } = await promisify(execFile)(
        process.execPath,
        [
          "--import",
          "tsx",
          process.argv[1]!,
          "--child",
          provider,
          "--dir",
          dir,
          "--texts",
          `${texts}`,
          "--images",
          `${imageCount}`,
        ],
        { maxBuffer: 1 << 24 },
      );
      return JSON.parse(stdout.trim().split("\n").at(-1)!) as Record<string, number>;
    };
    const cuda = await run("cuda");
    const cpu = await run("cpu");
    const rows = [];
    for (const c of CASES) {
      const a = new Float32Array((await readFile(join(dir, `cuda-${c.backbone}.f32`))).buffer.slice(0));
      const b = new Float32Array((await readFile(join(dir, `cpu-${c.backbone}.f32`))).buffer.slice(0));
      let maxDiff = 0;
      for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b[i]!));
      rows.push({
        backbone: c.backbone,
        items: c.kind === "texts" ? texts : imageCount,
        cudaItemsPerS: Math.round(cuda[c.backbone]!),
        cpuItemsPerS: Math.round(cpu[c.backbone]!),
        speedup: Number((cuda[c.backbone]! / cpu[c.backbone]!).toFixed(2)),
        maxAbsDiff: maxDiff,
      });
    }
    process.stdout.write(`${JSON.stringify({ rows, machine: await machine() }, null, 2)}\n`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
