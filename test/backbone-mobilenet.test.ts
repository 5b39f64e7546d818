import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { Tensor } from "onnxruntime-node";
import { TAP_VARIANTS, type TapVariant } from "../shared/backbone/image-taps.ts";
import {
  buildMobileNetBackbone,
  buildTapBackbone,
  defaultNsfwjsSource,
  ensureMobileNetBackbone,
  ensureTapBackbone,
  IMAGE_INPUT,
  IMAGE_OUTPUT,
  MOBILENET_ID,
  NSFWJS_MODELS,
  readNsfwjsModel,
} from "../shared/backbone/mobilenet.ts";
import { BackboneSpec } from "../shared/backbone/spec.ts";
import { mulberry32 } from "../shared/learn/split.ts";
import { getSession, releaseSessions } from "../shared/onnx/session.ts";
import { tempDir } from "./helpers/platform.ts";

const S = 224;
const DIM = 1280;
/** Per image: max |ours − tfjs| ≤ this × max |tfjs feature| of that image. */
const REL_TOL = 1e-3;

type Pixel = (y: number, x: number) => [number, number, number];

/** Procedural 224×224 RGB images in [0, 1], the range nsfwjs feeds its model. */
function images(): { name: string; px: Pixel }[] {
  const noise = (seed: number): Pixel => {
    const r = mulberry32(seed);
    const buf = Float32Array.from({ length: S * S * 3 }, r);
    return (y, x) => [
      buf[(y * S + x) * 3] as number,
      buf[(y * S + x) * 3 + 1] as number,
      buf[(y * S + x) * 3 + 2] as number,
    ];
  };
  /** Smooth "photo-like" blobs: a few random low-frequency sinusoids per channel. */
  const blobs = (seed: number): Pixel => {
    const r = mulberry32(seed);
    const waves = Array.from({ length: 3 }, () =>
      Array.from({ length: 4 }, () => ({
        fy: r() * 0.08,
        fx: r() * 0.08,
        ph: r() * 6.28,
        a: 0.1 + r() * 0.15,
      })),
    );
    return (y, x) =>
      waves.map((ws) =>
        Math.min(
          1,
          Math.max(0, 0.5 + ws.reduce((s, w) => s + w.a * Math.sin(w.fy * y + w.fx * x + w.ph), 0)),
        ),
      ) as [number, number, number];
  };
  const checker =
    (n: number, a: number[], b: number[]): Pixel =>
    (y, x) =>
      ((Math.floor(y / n) + Math.floor(x / n)) % 2 === 0 ? a : b) as [number, number, number];
  const solid =
    (c: [number, number, number]): Pixel =>
    () =>
      c;
  const t = (v: number) => v / (S - 1);
  return [
    { name: "black", px: solid([0, 0, 0]) },
    { name: "white", px: solid([1, 1, 1]) },
    { name: "red", px: solid([1, 0, 0]) },
    { name: "grey", px: solid([0.5, 0.5, 0.5]) },
    { name: "horizontal gradient", px: (_y, x) => [t(x), t(x), t(x)] },
    { name: "vertical colour gradient", px: (y) => [t(y), 0.5, 1 - t(y)] },
    { name: "diagonal gradient", px: (y, x) => [t(x), t(y), (t(x) + t(y)) / 2] },
    {
      name: "radial",
      px: (y, x) => {
        const d = Math.hypot(y - 112, x - 112) / 158;
        return [1 - d, d, 0.3];
      },
    },
    { name: "checker 4", px: checker(4, [0, 0, 0], [1, 1, 1]) },
    { name: "checker 16 colour", px: checker(16, [0.9, 0.2, 0.1], [0.1, 0.3, 0.8]) },
    { name: "checker 56", px: checker(56, [0.2, 0.2, 0.2], [0.8, 0.8, 0.7]) },
    { name: "stripes", px: (_y, x) => (x % 12 < 6 ? [1, 1, 0] : [0, 0, 0.5]) },
    {
      name: "sine rings",
      px: (y, x) => {
        const v = 0.5 + 0.5 * Math.sin(Math.hypot(y - 90, x - 130) / 5);
        return [v, v * 0.7, 1 - v];
      },
    },
    {
      name: "disc on sky",
      px: (y, x) => (Math.hypot(y - 120, x - 100) < 50 ? [0.95, 0.8, 0.2] : [0.4, 0.6, 0.9 - t(y) * 0.3]),
    },
    { name: "noise 1", px: noise(1) },
    { name: "noise 2", px: noise(2) },
    { name: "noise 3", px: noise(3) },
    { name: "blobs 1", px: blobs(11) },
    { name: "blobs 2", px: blobs(12) },
    { name: "blobs 3", px: blobs(13) },
  ];
}

/** The images at size × size (the generators draw on a 224 frame, sampled at scaled coordinates). */
function batch(list: { px: Pixel }[], size = S): Float32Array {
  const out = new Float32Array(list.length * size * size * 3);
  const at = (v: number) => Math.floor((v * S) / size);
  list.forEach(({ px }, i) => {
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++) out.set(px(at(y), at(x)), ((i * size + y) * size + x) * 3);
  });
  return out;
}

let modelsDir: string;
let built: { dir: string; spec: BackboneSpec };
let buildMs = 0;

before(async () => {
  await tf.setBackend("cpu");
  modelsDir = await tempDir("headstart-mobilenet-");
  const t0 = performance.now();
  built = await ensureMobileNetBackbone(modelsDir);
  buildMs = performance.now() - t0;
});

after(async () => {
  await releaseSessions();
  await rm(modelsDir, { recursive: true, force: true });
});

describe("mobilenet-v2-1280 (nsfwjs MobileNetV2 → ONNX)", () => {
  test("backbone.json parses as a BackboneSpec describing the image model", async (t) => {
    t.diagnostic(`conversion + write: ${buildMs.toFixed(0)} ms`);
    assert.equal(built.dir, join(modelsDir, MOBILENET_ID));
    const spec = BackboneSpec.parse(JSON.parse(await readFile(join(built.dir, "backbone.json"), "utf8")));
    assert.equal(spec.id, MOBILENET_ID);
    assert.equal(spec.modality, "image");
    assert.equal(spec.dim, DIM);
    assert.deepEqual(spec.io, { ids: IMAGE_INPUT, mask: "attention_mask", output: IMAGE_OUTPUT });
    assert.deepEqual(spec.preprocessing, {
      type: "image",
      input: IMAGE_INPUT,
      width: S,
      height: S,
      layout: "nhwc",
      resize: "stretch",
      scale: 1,
      offset: 0,
    });
    const bytes = await readFile(join(built.dir, spec.model));
    assert.equal(createHash("sha256").update(bytes).digest("hex"), spec.sha256);
  });

  test("the build is deterministic and ensure reuses what is there", async () => {
    const other = join(modelsDir, "again");
    const spec = await buildMobileNetBackbone({ outDir: other });
    assert.equal(spec.sha256, built.spec.sha256);
    const mtime = (await stat(join(built.dir, "model.onnx"))).mtimeMs;
    const again = await ensureMobileNetBackbone(modelsDir);
    assert.equal(again.spec.sha256, built.spec.sha256);
    assert.equal((await stat(join(built.dir, "model.onnx"))).mtimeMs, mtime);
  });

  test("features match the package's model run in tfjs on 20 varied images", async (t) => {
    const list = images();
    const x = batch(list);
    const n = list.length;

    const session = await getSession(join(built.dir, built.spec.model), built.spec.sha256, {
      executionProviders: ["cpu"],
    });
    const out = await session.run({ [IMAGE_INPUT]: new Tensor("float32", x, [n, S, S, 3]) });
    const ours = out[IMAGE_OUTPUT] as Tensor;
    assert.deepEqual([...ours.dims], [n, DIM]);

    const which = NSFWJS_MODELS[MOBILENET_ID];
    assert.ok(which);
    const { full, model: features } = await tfjsAt([which.featureLayer]);
    const refT = tf.tidy(() => features.predict(tf.tensor(x, [n, S, S, 3])) as tf.Tensor);
    const ref = refT.dataSync();
    refT.dispose();
    full.dispose();

    const a = ours.data as Float32Array;
    const worstRel = assertCloseRows(MOBILENET_ID, a, Float32Array.from(ref), n, DIM, list);
    // Different images must give different features, or the comparison above proves little.
    const distinct = new Set(
      list.map((_, i) => Array.from(a.subarray(i * DIM, i * DIM + 16), (v) => v.toFixed(3)).join()),
    );
    assert.equal(distinct.size, n);
    t.diagnostic(`worst max|Δ| / max|feature| over ${n} images: ${worstRel.toExponential(2)}`);
  });
});

/**
 * The package's model (`base`, a key of NSFWJS_MODELS) in TF.js with outputs at `layers`. At
 * another input size than the model's own, a copy of the graph up to `layers` is built for that
 * size (the layers after them may not accept it) and given the loaded model's weights.
 */
async function tfjsAt(layers: readonly string[], base = MOBILENET_ID, size?: number) {
  const which = NSFWJS_MODELS[base];
  assert.ok(which);
  const { model, weightData } = await readNsfwjsModel(defaultNsfwjsSource(which.folder));
  const full = await tf.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: model.modelTopology as never,
      weightSpecs: model.weightsManifest.flatMap((g) => g.weights) as never,
      weightData: weightData.slice().buffer,
    }),
  );
  if (size === undefined || size === which.size) {
    const outputs = layers.map((l) => full.getLayer(l).output as tf.SymbolicTensor);
    return { full, model: tf.model({ inputs: full.inputs, outputs }) };
  }
  const resized = await tf.models.modelFromJSON({
    modelTopology: truncated(model.modelTopology, layers, size),
  });
  for (const layer of resized.layers) {
    if (layer.weights.length > 0) layer.setWeights(full.getLayer(layer.name).getWeights());
  }
  return { full, model: resized };
}

/** A Keras functional topology cut to what `outputs` read, its input `size` × `size`. */
function truncated(topology: unknown, outputs: readonly string[], size: number): never {
  const copy = structuredClone(topology) as { model_config?: unknown };
  const cfg = ((copy.model_config ?? copy) as { config: KerasConfig }).config;
  const byName = new Map(cfg.layers.map((l) => [l.name, l]));
  const keep = new Set<string>();
  const visit = (name: string): void => {
    if (keep.has(name)) return;
    keep.add(name);
    for (const node of byName.get(name)?.inbound_nodes ?? []) for (const [from] of node) visit(from);
  };
  for (const name of outputs) visit(name);
  cfg.layers = cfg.layers.filter((l) => keep.has(l.name));
  cfg.output_layers = outputs.map((name) => [name, 0, 0]);
  for (const l of cfg.layers) {
    if (l.class_name === "InputLayer") l.config.batch_input_shape = [null, size, size, 3];
  }
  return copy as never;
}

interface KerasConfig {
  layers: Array<{
    name: string;
    class_name: string;
    config: Record<string, unknown>;
    inbound_nodes: Array<Array<[string, number, number, unknown]>>;
  }>;
  output_layers: Array<[string, number, number]>;
}

describe("tap variants (intermediate layers of the same MobileNetV2)", () => {
  const variants = Object.values(TAP_VARIANTS);

  test("each is registered data: a backbone.json with its taps, deterministic, reused when built", async () => {
    assert.ok(variants.length >= 2);
    for (const v of variants) {
      const built = await ensureTapBackbone(v.id, modelsDir);
      assert.equal(built.spec.id, v.id);
      assert.equal(built.spec.dim, v.dim);
      assert.deepEqual(built.spec.taps, v.taps);
      assert.equal(built.spec.preprocessing.type, "image");
      const again = await buildTapBackbone(v.id, { outDir: join(modelsDir, `${v.id}-again`) });
      assert.equal(again.sha256, built.spec.sha256);
    }
    assert.throws(() => buildTapBackbone("mobilenet-v2-nope", { outDir: modelsDir }), /valid: mobilenet-v2-/);
  });

  // Per base model and input size: one TF.js run over every tapped layer, on the images and (when a
  // variant mirrors) on their mirrors; InceptionV3 in TF.js's CPU backend takes seconds an image,
  // so it sees 2 of them.
  const groups = new Map<string, TapVariant[]>();
  for (const v of variants) {
    const key = `${v.base}@${v.size ?? NSFWJS_MODELS[v.base]?.size}`;
    groups.set(key, [...(groups.get(key) ?? []), v]);
  }
  for (const [group, members] of groups) {
    test(`${group}: features equal the package's model at the tapped layers, pooled (L2-normalized and joined when several; averaged with the mirror's when mirrored)`, async (t) => {
      const base = members[0]!.base;
      const size = members[0]!.size ?? NSFWJS_MODELS[base]!.size;
      const list = base === MOBILENET_ID ? images() : images().filter((im) => /disc|blobs 1/.test(im.name));
      const x = batch(list, size);
      const n = list.length;
      const layers = [...new Set(members.flatMap((v) => v.taps.map((tap) => tap.layer)))];
      const pooled = await pooledMaps(layers, base, size, x, n);
      const flipped = members.some((v) => v.mirror)
        ? await pooledMaps(layers, base, size, mirror(x, n, size), n)
        : undefined;
      for (const v of members) {
        const built = await ensureTapBackbone(v.id, modelsDir);
        assert.equal(built.spec.preprocessing.type === "image" && built.spec.preprocessing.width, size);
        const session = await getSession(join(built.dir, built.spec.model), built.spec.sha256, {
          executionProviders: ["cpu"],
        });
        const out = (await session.run({ [IMAGE_INPUT]: new Tensor("float32", x, [n, size, size, 3]) }))[
          IMAGE_OUTPUT
        ] as Tensor;
        assert.deepEqual([...out.dims], [n, v.dim]);
        const ref = joined(v, pooled);
        if (v.mirror) {
          const other = joined(v, flipped!);
          ref.forEach((r, j) => {
            ref[j] = (r + (other[j] as number)) / 2;
          });
        }
        const worst = assertCloseRows(v.id, out.data as Float32Array, ref, n, v.dim, list);
        t.diagnostic(`${v.id}: worst max|Δ| / max|feature| over ${n} images: ${worst.toExponential(2)}`);
      }
      for (const p of pooled.values()) p.dispose();
      for (const p of flipped?.values() ?? []) p.dispose();
    });
  }
});

/** Per layer: [n, C], the layer's map averaged over height and width, as TF.js computes it. */
async function pooledMaps(layers: readonly string[], base: string, size: number, x: Float32Array, n: number) {
  const { full, model } = await tfjsAt(layers, base, size);
  const pooled = new Map<string, tf.Tensor2D>();
  const maps = tf.tidy(() => model.predict(tf.tensor(x, [n, size, size, 3])) as tf.Tensor[] | tf.Tensor);
  (Array.isArray(maps) ? maps : [maps]).forEach((m, i) => {
    pooled.set(
      layers[i] as string,
      tf.tidy(() => m.mean([1, 2]) as tf.Tensor2D),
    );
    m.dispose();
  });
  full.dispose();
  return pooled;
}

/** A variant's reference features: its taps' pooled maps, each L2-normalized when several, joined. */
function joined(v: TapVariant, pooled: ReadonlyMap<string, tf.Tensor2D>): Float32Array {
  const refT = tf.tidy(() => {
    const parts = v.taps.map((tap) => pooled.get(tap.layer) as tf.Tensor2D);
    const normed = parts.length === 1 ? parts : parts.map((p) => p.div(p.norm("euclidean", 1, true)));
    return tf.concat(normed, 1);
  });
  const ref = Float32Array.from(refT.dataSync());
  refT.dispose();
  return ref;
}

/** NHWC images, each flipped left to right. */
function mirror(x: Float32Array, n: number, size: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < n; i++)
    for (let y = 0; y < size; y++)
      for (let c = 0; c < size; c++) {
        const from = ((i * size + y) * size + c) * 3;
        out.set(x.subarray(from, from + 3), ((i * size + y) * size + (size - 1 - c)) * 3);
      }
  return out;
}

/** Asserts each row of `ours` is within REL_TOL (of its largest feature) of `ref`'s; the worst ratio. */
function assertCloseRows(
  id: string,
  ours: Float32Array,
  ref: Float32Array,
  n: number,
  dim: number,
  list: readonly { name: string }[],
): number {
  let worst = 0;
  for (let i = 0; i < n; i++) {
    let diff = 0;
    let scale = 0;
    for (let j = i * dim; j < (i + 1) * dim; j++) {
      diff = Math.max(diff, Math.abs((ours[j] as number) - (ref[j] as number)));
      scale = Math.max(scale, Math.abs(ref[j] as number));
    }
    assert.ok(scale > 0, `${id} ${list[i]?.name}: all-zero features`);
    assert.ok(diff <= REL_TOL * scale, `${id} ${list[i]?.name}: max |Δ| ${diff} > ${REL_TOL} × ${scale}`);
    worst = Math.max(worst, diff / scale);
  }
  return worst;
}
