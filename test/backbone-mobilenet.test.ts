import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { Tensor } from "onnxruntime-node";
import { TAP_VARIANTS } from "../shared/backbone/image-taps.ts";
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

function batch(list: { px: Pixel }[]): Float32Array {
  const out = new Float32Array(list.length * S * S * 3);
  list.forEach(({ px }, i) => {
    for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) out.set(px(y, x), ((i * S + y) * S + x) * 3);
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
    let worstRel = 0;
    const distinct = new Set<string>();
    for (let i = 0; i < n; i++) {
      let diff = 0;
      let scale = 0;
      for (let j = i * DIM; j < (i + 1) * DIM; j++) {
        diff = Math.max(diff, Math.abs((a[j] as number) - (ref[j] as number)));
        scale = Math.max(scale, Math.abs(ref[j] as number));
      }
      assert.ok(scale > 0, `${list[i]?.name}: all-zero features`);
      assert.ok(diff <= REL_TOL * scale, `${list[i]?.name}: max |Δ| ${diff} > ${REL_TOL} × ${scale}`);
      worstRel = Math.max(worstRel, diff / scale);
      distinct.add(Array.from(a.subarray(i * DIM, i * DIM + 16), (v) => v.toFixed(3)).join());
    }
    // Different images must give different features, or the comparison above proves little.
    assert.equal(distinct.size, n);
    t.diagnostic(`worst max|Δ| / max|feature| over ${n} images: ${worstRel.toExponential(2)}`);
  });
});

/** The package's model in TF.js, with outputs at `layers`. */
async function tfjsAt(layers: readonly string[]) {
  const which = NSFWJS_MODELS[MOBILENET_ID];
  assert.ok(which);
  const { model, weightData } = await readNsfwjsModel(defaultNsfwjsSource(which.folder));
  const full = await tf.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: model.modelTopology as never,
      weightSpecs: model.weightsManifest.flatMap((g) => g.weights) as never,
      weightData: weightData.slice().buffer,
    }),
  );
  return {
    full,
    model: tf.model({
      inputs: full.inputs,
      outputs: layers.map((l) => full.getLayer(l).output as tf.SymbolicTensor),
    }),
  };
}

describe("tap variants (intermediate layers of the same MobileNetV2)", () => {
  const variants = Object.values(TAP_VARIANTS).filter((v) => v.base === MOBILENET_ID);

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

  test("features equal the package's model at the tapped layers, pooled (and L2-normalized and joined when several)", async (t) => {
    const list = images();
    const x = batch(list);
    const n = list.length;
    const layers = [...new Set(variants.flatMap((v) => v.taps.map((tap) => tap.layer)))];
    const { full, model } = await tfjsAt(layers);
    // Per layer: [n, C], the map averaged over height and width, as TF.js computes it.
    const pooled = new Map<string, tf.Tensor2D>();
    const maps = tf.tidy(() => model.predict(tf.tensor(x, [n, S, S, 3])) as tf.Tensor[] | tf.Tensor);
    (Array.isArray(maps) ? maps : [maps]).forEach((m, i) => {
      pooled.set(
        layers[i] as string,
        tf.tidy(() => m.mean([1, 2]) as tf.Tensor2D),
      );
      m.dispose();
    });
    full.dispose();
    for (const v of variants) {
      const built = await ensureTapBackbone(v.id, modelsDir);
      const session = await getSession(join(built.dir, built.spec.model), built.spec.sha256, {
        executionProviders: ["cpu"],
      });
      const out = (await session.run({ [IMAGE_INPUT]: new Tensor("float32", x, [n, S, S, 3]) }))[
        IMAGE_OUTPUT
      ] as Tensor;
      assert.deepEqual([...out.dims], [n, v.dim]);
      const refT = tf.tidy(() => {
        const parts = v.taps.map((tap) => pooled.get(tap.layer) as tf.Tensor2D);
        const normed = parts.length === 1 ? parts : parts.map((p) => p.div(p.norm("euclidean", 1, true)));
        return tf.concat(normed, 1);
      });
      const ref = refT.dataSync();
      refT.dispose();
      const a = out.data as Float32Array;
      let worst = 0;
      for (let i = 0; i < n; i++) {
        let diff = 0;
        let scale = 0;
        for (let j = i * v.dim; j < (i + 1) * v.dim; j++) {
          diff = Math.max(diff, Math.abs((a[j] as number) - (ref[j] as number)));
          scale = Math.max(scale, Math.abs(ref[j] as number));
        }
        assert.ok(scale > 0, `${v.id} ${list[i]?.name}: all-zero features`);
        assert.ok(
          diff <= REL_TOL * scale,
          `${v.id} ${list[i]?.name}: max |Δ| ${diff} > ${REL_TOL} × ${scale}`,
        );
        worst = Math.max(worst, diff / scale);
      }
      t.diagnostic(`${v.id}: worst max|Δ| / max|feature| over ${n} images: ${worst.toExponential(2)}`);
    }
    for (const p of pooled.values()) p.dispose();
  });
});
