/**
 * The image backbones that read nsfwjs's models at intermediate layers, as data: mobilenet.ts
 * converts them, and the registry lists them without loading the converter.
 */
import type { FeatureTap } from "../onnx/tfjs/layers.ts";

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
  dim: number;
  description: string;
}

const avg = (layer: string): FeatureTap => ({ layer, pool: "avg" });

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
    taps: ["block_6_project_BN", "block_8_project_BN", "block_10_project_BN", "block_13_project_BN"].map(avg),
    dim: 64 + 64 + 96 + 160,
    description:
      "MobileNetV2 (224×224) read at blocks 6, 8, 10 and 13 (mid-level features, mostly as ImageNet trained), each average-pooled and L2-normalized, concatenated: 384-d",
  },
};
