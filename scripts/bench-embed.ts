/**
 * `npm run bench -- --sections embed`: the batch stage (`runEmbedShards`: read the plan and the
 * items, embed, write the `.npy` shard, its rows and the commit marker) against its raw limit on
 * the very same planned items, per backbone, measured side by side (interleaved repetitions):
 *
 * - text (`glove-100d`, `use-lite-512`; IMDB reviews): the raw limit is the embedder alone,
 *   tokenization and ids in JS then `session.run` (`TextEmbedder.embed`); `session.run` alone on
 *   the same pre-tokenized batches is reported beside it;
 * - images (the image default, any image backbone named; Fashion-MNIST PNG files): the raw limit is `session.run` alone on
 *   pre-decoded float32 batches of the embedder's micro-batch size, as issue 19 defines it;
 *   `ImageEmbedder.embed` (decode + resize + run) is reported beside it.
 *
 * `ratio` is stage throughput over the raw limit's.
 */
import type { InferenceSession, Tensor as OrtTensor } from "onnxruntime-node";
import { Tensor } from "onnxruntime-node";
import type { ImageEmbedder } from "../shared/backbone/image-embedder.ts";
import { loadEmbedder } from "../shared/backbone/registry.ts";
import type { Embedder, EmbedInput } from "../shared/backbone/spec.ts";
import type { TextEmbedder } from "../shared/backbone/text-embedder.ts";
import { packIds } from "../shared/backbone/tokenizer.ts";
import { SparseTextEmbedder } from "../shared/backbone/use-embedder.ts";
import { normalizeText } from "../shared/cache/address.ts";
import { DEFAULT_BACKBONES, type loadConfig } from "../shared/config.ts";
import type { EmbedJob } from "../shared/embed/job.ts";
import { readShardPlan } from "../shared/embed/plan.ts";
import { DEFAULT_BATCH_SIZE, runEmbedShards } from "../shared/embed/run.ts";
import { decodeImage, pixelsToTensor } from "../shared/images/decode.ts";
import { keys } from "../shared/layout.ts";
import type { Platform } from "../shared/platform.ts";
import { loadImdb } from "../shared/samples/imdb.ts";
import { FASHION_SOURCE, putFashionMnist } from "./fashion-dataset.ts";

export const EMBED_BACKBONES = ["glove-100d", "use-lite-512", DEFAULT_BACKBONES.image] as const;
/** Items for the slow backbones: enough for stable medians in tens of seconds, not minutes. */
const SLOW_BACKBONE_ITEMS = 600;
/** The micro-batch of the image embedder and of the encoder: what each `session.run` sees. */
const MICRO_BATCH = 32;

type Feeds = Record<string, OrtTensor>;

/** What one backbone's measurement needs, prepared outside any timing. */
interface EmbedCase {
  backbone: string;
  dataset: string;
  job: EmbedJob;
  embedder: Embedder;
  /** The planned items in plan order, as the embedder takes them. */
  inputs: EmbedInput[];
  /** `session.run` feeds for the same items, batched as the embedder batches them. */
  feeds: Feeds[];
  session: InferenceSession;
  /** Which path is the raw limit the stage is held to. */
  raw: "embed" | "session.run";
}

export interface EmbedFigures {
  backbone: string;
  docs: number;
  stageDocsPerSec: number;
  rawDocsPerSec: number;
  ratio: number;
  /** What `rawDocsPerSec` measures: the embedder (text) or `session.run` alone (images). */
  raw: "embed" | "session.run";
  embedDocsPerSec: number;
  sessionRunDocsPerSec: number;
  stageSeconds: number[];
  embedSeconds: number[];
  sessionRunSeconds: number[];
  /** Images: CPU per image of what the stage adds to the model (see `decodeCost`). */
  decode?: DecodeCost;
}

export interface DecodeCost {
  /** `decodeImage` to the model's input size, one image at a time (decode + resize). */
  decodeResizeMs: number;
  /** `decodeImage` at each image's own size: the decode alone. */
  decodeNativeMs: number;
  /** `pixelsToTensor`: uint8 RGB to the model's float32 input. */
  toTensorMs: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const seconds = async (f: () => Promise<unknown>) => {
  const t0 = performance.now();
  await f();
  return (performance.now() - t0) / 1000;
};

export interface EmbedBenchOptions {
  backbones: readonly string[];
  /** Items for `glove-100d`; the other backbones take at most `SLOW_BACKBONE_ITEMS`. */
  items: number;
  reps: number;
  log: (line: string) => void;
}

export async function embedBench(
  platform: Platform,
  config: ReturnType<typeof loadConfig>,
  opts: EmbedBenchOptions,
): Promise<EmbedFigures[]> {
  const out: EmbedFigures[] = [];
  for (const backbone of opts.backbones) {
    const n = backbone === "glove-100d" ? opts.items : Math.min(opts.items, SLOW_BACKBONE_ITEMS);
    const c =
      (await platform.backbone(backbone)).modality === "image"
        ? await imageCase(platform, config, backbone, n, opts.log)
        : await textCase(platform, config, backbone, n);
    const figures = await measure(platform, c, opts.reps);
    out.push(c.raw === "session.run" ? { ...figures, decode: await decodeCost(c) } : figures);
    opts.log(`  embed ${backbone}: ratio ${out.at(-1)!.ratio.toFixed(3)}`);
  }
  return out;
}

/** One shard holding every item, so every path sees the same items in the same order. */
async function plannedItems(platform: Platform, backbone: string, dataset: string, n: number) {
  const job = await platform.planEmbed(dataset, { backbone, shardSize: n });
  if (job.shards.length !== 1) throw new Error(`the bench plans one shard, got ${job.shards.length}`);
  const plan = await readShardPlan(platform.store, backbone, dataset, job.shards[0]!);
  return { job, items: plan.items };
}

async function textCase(
  platform: Platform,
  config: ReturnType<typeof loadConfig>,
  backbone: string,
  n: number,
): Promise<EmbedCase> {
  const rows = (await loadImdb(Math.ceil(n / 4))).slice(0, n);
  const dataset = `bench-embed-${n}`;
  await platform.putManifest(dataset, "jsonl", rows.map((r) => JSON.stringify(r)).join("\n"));
  const { job, items } = await plannedItems(platform, backbone, dataset, n);
  const texts = items.map((it) => normalizeText(it.text!));
  const embedder = (await loadEmbedder(platform.store, backbone, config)) as
    | TextEmbedder
    | SparseTextEmbedder;
  const feeds: Feeds[] = [];
  // The stage hands the embedder DEFAULT_BATCH_SIZE items at a time; it sorts them by length and
  // runs them in micro-batches (the whole batch for GloVe's table lookup).
  const micro = embedder instanceof SparseTextEmbedder ? MICRO_BATCH : DEFAULT_BATCH_SIZE;
  for (let s = 0; s < texts.length; s += DEFAULT_BATCH_SIZE) {
    const lists: TokenIds[] = texts.slice(s, s + DEFAULT_BATCH_SIZE).map((t) => embedder.tokenIds(t));
    lists.sort((a, b) => a.length - b.length);
    for (let m = 0; m < lists.length; m += micro) feeds.push(textFeeds(embedder, lists.slice(m, m + micro)));
  }
  const inputs = texts.map((text) => ({ text }));
  return { backbone, dataset, job, embedder, inputs, feeds, session: await embedder.session(), raw: "embed" };
}

/** A GloVe-style embedder's ids are an Int32Array, the encoder's a number[]. */
type TokenIds = Int32Array | number[];

function textFeeds(embedder: TextEmbedder | SparseTextEmbedder, lists: TokenIds[]): Feeds {
  if (embedder instanceof SparseTextEmbedder) return embedder.feeds(lists as number[][]);
  const enc = packIds(lists as Int32Array[]);
  const { ids, mask } = embedder.spec.io;
  return {
    [ids]: new Tensor("int64", enc.ids, [lists.length, enc.seqLen]),
    [mask]: new Tensor("int64", enc.mask, [lists.length, enc.seqLen]),
  };
}

async function imageCase(
  platform: Platform,
  config: ReturnType<typeof loadConfig>,
  backbone: string,
  n: number,
  log: (line: string) => void,
): Promise<EmbedCase> {
  const dataset = `bench-embed-fashion-${n}`;
  // Both splits of the first n/2 images each: n items.
  await putFashionMnist(platform, dataset, { source: FASHION_SOURCE, limit: Math.ceil(n / 2), log });
  const { job, items } = await plannedItems(platform, backbone, dataset, n);
  const embedder = (await loadEmbedder(platform.store, backbone, config)) as ImageEmbedder;
  const pre = embedder.spec.preprocessing;
  if (pre.type !== "image") throw new Error(`${backbone} is not an image backbone`);
  const inputs: EmbedInput[] = await Promise.all(
    items.map(async (it) => ({
      image: (await platform.store.get(keys.datasetFile(dataset, it.image!)))!.body,
    })),
  );
  const { width, height, resize, scale, offset } = pre;
  const per = width * height * 3;
  const feeds: Feeds[] = [];
  for (let s = 0; s < inputs.length; s += MICRO_BATCH) {
    const chunk = inputs.slice(s, s + MICRO_BATCH) as Array<{ image: Uint8Array }>;
    const decoded = await Promise.all(chunk.map((x) => decodeImage(x.image, { width, height, resize })));
    const pixels = new Float32Array(chunk.length * per);
    decoded.forEach((d, j) => {
      pixelsToTensor(d, { scale, offset }, pixels, j * per);
    });
    feeds.push({ [pre.input]: new Tensor("float32", pixels, [chunk.length, height, width, 3]) });
  }
  return {
    backbone,
    dataset,
    job,
    embedder,
    inputs,
    feeds,
    session: await embedder.session(),
    raw: "session.run",
  };
}

/** Stage, embedder and `session.run`, interleaved, `reps` times each after one warm-up of each. */
async function measure(platform: Platform, c: EmbedCase, reps: number): Promise<EmbedFigures> {
  const store = platform.store;
  const stageRun = async () => {
    // A fresh cache each time: the committed shard goes, the plan (the job) stays.
    for (const o of await store.list(keys.cachePrefix(c.backbone, c.dataset))) {
      if (!o.key.includes("/_plan-")) await store.delete(o.key);
    }
    return seconds(async () => {
      const r = await runEmbedShards(store, c.job, c.embedder);
      if (r.itemsEmbedded !== c.inputs.length) throw new Error(`the stage embedded ${r.itemsEmbedded} items`);
    });
  };
  const embedRun = () =>
    seconds(async () => {
      for (let s = 0; s < c.inputs.length; s += DEFAULT_BATCH_SIZE) {
        await c.embedder.embed(c.inputs.slice(s, s + DEFAULT_BATCH_SIZE));
      }
    });
  const sessionRun = () =>
    seconds(async () => {
      for (const f of c.feeds) {
        const out = await c.session.run(f);
        for (const t of Object.values(out)) t.dispose?.();
      }
    });
  const stage: number[] = [];
  const embed: number[] = [];
  const run: number[] = [];
  await sessionRun();
  await embedRun();
  for (let r = 0; r < reps; r++) {
    stage.push(await stageRun());
    embed.push(await embedRun());
    run.push(await sessionRun());
  }
  const docs = c.inputs.length;
  const stageDocsPerSec = docs / median(stage);
  const embedDocsPerSec = docs / median(embed);
  const sessionRunDocsPerSec = docs / median(run);
  const rawDocsPerSec = c.raw === "embed" ? embedDocsPerSec : sessionRunDocsPerSec;
  return {
    backbone: c.backbone,
    docs,
    stageDocsPerSec,
    rawDocsPerSec,
    ratio: stageDocsPerSec / rawDocsPerSec,
    raw: c.raw,
    embedDocsPerSec,
    sessionRunDocsPerSec,
    stageSeconds: stage,
    embedSeconds: embed,
    sessionRunSeconds: run,
  };
}

/**
 * Milliseconds per image of the work the stage does besides the model, one image at a time (so
 * each is CPU time on one core, libuv's thread included): medians of 3 passes over the items.
 */
async function decodeCost(c: EmbedCase): Promise<DecodeCost> {
  const pre = (c.embedder as ImageEmbedder).spec.preprocessing;
  if (pre.type !== "image") throw new Error(`${c.backbone} is not an image backbone`);
  const images = c.inputs.map((x) => (x as { image: Uint8Array }).image);
  const { width, height, resize, scale, offset } = pre;
  const perImage = async (f: (img: Uint8Array) => Promise<unknown> | unknown) => {
    const passes: number[] = [];
    for (let r = 0; r < 3; r++) {
      passes.push(
        await seconds(async () => {
          for (const img of images) await f(img);
        }),
      );
    }
    return (1000 * median(passes)) / images.length;
  };
  const sharp = (await import("sharp")).default;
  const decoded = await decodeImage(images[0]!, { width, height, resize });
  const out = new Float32Array(width * height * 3);
  return {
    decodeResizeMs: await perImage((img) => decodeImage(img, { width, height, resize })),
    decodeNativeMs: await perImage(async (img) => {
      const meta = await sharp(img).metadata();
      return decodeImage(img, { width: meta.width, height: meta.height, resize });
    }),
    toTensorMs: await perImage(() => pixelsToTensor(decoded, { scale, offset }, out, 0)),
  };
}
