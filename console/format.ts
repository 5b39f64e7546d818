/** Numbers and dates as people read them. */
export const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
export const num = (x: number) => x.toLocaleString("en");
export const fixed = (x: number, digits = 3) => x.toFixed(digits);
export const when = (iso?: string) => (iso ? new Date(iso).toLocaleString("en") : "—");
export const bytes = (n: number) =>
  n < 1024 ? `${n} B` : n < 1024 ** 2 ? `${(n / 1024).toFixed(1)} KB` : `${(n / 1024 ** 2).toFixed(1)} MB`;
/** A time left, roughly: "about 40 s", "about 3 min". */
export const eta = (seconds: number) =>
  seconds < 90 ? `about ${Math.max(1, Math.round(seconds))} s` : `about ${Math.round(seconds / 60)} min`;
