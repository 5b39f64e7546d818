/**
 * The image backbones that read nsfwjs's models at intermediate layers, as data: mobilenet.ts
 * converts them, and the registry lists them without loading the converter.
 */
import type { FeatureTap } from "../onnx/tfjs/feature-tap.ts";

/**
 * Variants that read the same models' intermediate layers instead of the pooled output (issue
 * 20): nsfwjs fine-tuned the later blocks for its own five classes, while the earlier ones are
 * still ImageNet's, and mid-level features transfer better to other tasks. Each tap is pooled over
 * the map (global average); several are each L2-normalized and concatenated (layers.ts). Which
 * taps, and which variant is the default image backbone, were chosen by measurement:
 * docs/benchmarks.md, "Images".
 */
export interface TapVariant {
  id: string;
  /** The model it reads: a key of mobilenet.ts's `NSFWJS_MODELS`. */
  base: string;
  taps: readonly FeatureTap[];
  /** Input height and width, when not the base model's (small images need less upscaling). */
  size?: number;
  /** Average each image's features with its left-right mirror's (twice the compute). */
  mirror?: boolean;
  dim: number;
  description: string;
}

const avg = (layer: string): FeatureTap => ({ layer, pool: "avg" });
/** MobileNetV2's blocks 6, 8, 10 and 13 (64 + 64 + 96 + 160 channels). */
const MOBILENET_TAPS = [
  "block_6_project_BN",
  "block_8_project_BN",
  "block_10_project_BN",
  "block_13_project_BN",
].map(avg);
/** InceptionV3's mixed3 and mixed5 (768 channels each); nsfwjs fine-tuned from mixed6 on. */
const INCEPTION_TAPS = ["mixed3", "mixed5"].map(avg);

export const TAP_VARIANTS: Record<string, TapVariant> = {
  "mobilenet-v2-block10-96": {
    id: "mobilenet-v2-block10-96",
    base: "mobilenet-v2-1280",
    taps: [avg("block_10_project_BN")],
    dim: 96,
    description:
      "MobileNetV2 (224×224) read at block_10_project_BN, the last block nsfwjs left as ImageNet trained: 96-d average-pooled",
  },
  "mobilenet-v2-taps-384": {
    id: "mobilenet-v2-taps-384",
    base: "mobilenet-v2-1280",
    taps: MOBILENET_TAPS,
    dim: 64 + 64 + 96 + 160,
    description:
      "MobileNetV2 (224×224) read at blocks 6, 8, 10 and 13 (mid-level features, mostly as ImageNet trained), each average-pooled and L2-normalized, concatenated: 384-d",
  },
  "mobilenet-v2-taps-384-112": {
    id: "mobilenet-v2-taps-384-112",
    base: "mobilenet-v2-1280",
    taps: MOBILENET_TAPS,
    size: 112,
    dim: 384,
    description:
      "mobilenet-v2-taps-384 on a 112×112 input: for small images (up to about 64 px), which it upscales half as much, at about 3× the speed",
  },
  "mobilenet-v2-taps-384-mirror": {
    id: "mobilenet-v2-taps-384-mirror",
    base: "mobilenet-v2-1280",
    taps: MOBILENET_TAPS,
    mirror: true,
    dim: 384,
    description:
      "mobilenet-v2-taps-384 averaged with its left-right mirror's features (flip-averaged): for tasks where a mirrored image is the same class; twice the compute",
  },
  "inception-v3-mixed5-768": {
    id: "inception-v3-mixed5-768",
    base: "inception-v3-2048",
    taps: [avg("mixed5")],
    dim: 768,
    description:
      "InceptionV3 (299×299) read at mixed5, the last block nsfwjs left as ImageNet trained: 768-d average-pooled",
  },
  "inception-v3-taps-1536": {
    id: "inception-v3-taps-1536",
    base: "inception-v3-2048",
    taps: INCEPTION_TAPS,
    dim: 768 + 768,
    description:
      "InceptionV3 (299×299) read at mixed3 and mixed5, each average-pooled and L2-normalized, concatenated: 1536-d",
  },
  "inception-v3-taps-1536-149": {
    id: "inception-v3-taps-1536-149",
    base: "inception-v3-2048",
    taps: INCEPTION_TAPS,
    size: 149,
    dim: 768 + 768,
    description:
      "inception-v3-taps-1536 on a 149×149 input: for small images (up to about 64 px), about 4× the speed of the 299 input",
  },
};
