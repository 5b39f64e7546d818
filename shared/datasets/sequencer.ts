/**
 * The order of one key's uploads. S3 stamps every event with a `sequencer`: hexadecimal strings of
 * possibly different lengths, compared after left-padding the shorter with zeros. Ingest keeps the
 * last applied one in the dataset's status, so a stale or repeated event is no change.
 */
export function compareSequencers(a: string, b: string): number {
  const width = Math.max(a.length, b.length);
  const x = a.toUpperCase().padStart(width, "0");
  const y = b.toUpperCase().padStart(width, "0");
  return x < y ? -1 : x > y ? 1 : 0;
}
