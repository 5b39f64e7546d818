/**
 * What the train form offers. The API has no route that lists head types, so the console keeps
 * their names here; test/console-heads.test.ts checks this list against the registry
 * (shared/learn/registry.ts), so a type added there fails the test until it is offered here.
 */
export const HEAD_TYPES = ["logreg", "mlp", "knn", "centroid", "multilabel", "ridge"] as const;

/** Types besides the registered ones: `auto` searches, `zero-shot` builds a head from descriptions. */
export const META_TYPES = ["auto", "zero-shot"] as const;

/** The types whose `classWeight` parameter balances classes (none/balanced). */
export const CLASS_WEIGHTED = ["logreg", "mlp", "knn"] as const;

/** `unknownScorer` choices (shared/heads/train-request.ts's UNKNOWN_SCORERS). */
export const UNKNOWN_SCORERS = ["auto", "msp", "mahalanobis", "knn"] as const;
