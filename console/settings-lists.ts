/**
 * What Settings offers: the API's key scopes and webhook event types. Copies, since the console
 * imports no server module; test/console-lists.test.ts holds them to the server's lists.
 */
export const SCOPES = ["predict", "train", "ingest", "admin"] as const;

export const EVENTS = [
  "dataset.embedded",
  "dataset.failed",
  "head.trained",
  "head.promoted",
  "batch.succeeded",
  "batch.failed",
  "drift.detected",
];
