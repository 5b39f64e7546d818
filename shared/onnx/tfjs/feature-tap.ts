/**
 * A feature tap: which intermediate layer of an image model to read, and how to pool its map. Its
 * own module so backbone.json's schema can name it without loading the converter.
 */

/** `avg`: global average; `gem`: generalized mean with p = 3 over max(x, 1e-6) (Radenović et al.). */
export const TAP_POOLS = ["avg", "gem"] as const;

/** An intermediate feature map read out of the model, pooled over its height and width. */
export interface FeatureTap {
  layer: string;
  pool: (typeof TAP_POOLS)[number];
}
