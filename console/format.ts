/** Numbers and dates as people read them. */
export const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
export const num = (x: number) => x.toLocaleString("en");
export const fixed = (x: number, digits = 3) => x.toFixed(digits);
export const when = (iso?: string) => (iso ? new Date(iso).toLocaleString("en") : "—");
