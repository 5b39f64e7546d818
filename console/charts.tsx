/**
 * Charts as small hand-written SVG components: no chart library to ship or keep up to date. Each
 * is a `role="img"` with a label that states the numbers, and every mark carries a `<title>`, so
 * a screen reader hears what a sighted person sees. Colours are attributes, not inline styles,
 * which the Content-Security-Policy forbids.
 */

const short = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

export interface Bar {
  label: string;
  value: number;
  /** What is written after the bar (default: the value). */
  text?: string;
}

/** Horizontal bars, longest = `max` (default: the largest value). */
export function Bars(props: { bars: Bar[]; title: string; max?: number; highlight?: string }) {
  const row = 26;
  // ≈ 380 wide: drawn at full size on a phone (390 px), where a wider chart would shrink its text.
  const labelW = 110;
  const barW = 200;
  const width = labelW + barW + 70;
  const max = props.max ?? Math.max(1e-12, ...props.bars.map((b) => b.value));
  const summary = props.bars.map((b) => `${b.label}: ${b.text ?? b.value}`).join(", ");
  return (
    <svg
      class="chart bars"
      role="img"
      aria-label={`${props.title}. ${summary}`}
      viewBox={`0 0 ${width} ${props.bars.length * row + 4}`}
      width={width}
    >
      {props.bars.map((b, i) => {
        const w = Math.max(1, (b.value / max) * barW);
        const y = i * row + 2;
        return (
          <g key={b.label}>
            <title>{`${b.label}: ${b.text ?? b.value}`}</title>
            <text x={labelW - 8} y={y + 17} text-anchor="end" class="label">
              {short(b.label, 14)}
            </text>
            <rect
              x={labelW}
              y={y + 3}
              width={w}
              height={row - 8}
              rx={3}
              class={b.label === props.highlight ? "bar top" : "bar"}
            />
            <text x={labelW + w + 6} y={y + 17} class="value">
              {b.text ?? String(b.value)}
            </text>
          </g>
        );
      })}
    </svg>
  );
}

/**
 * Row-normalized shade: a class's share of its true rows, so small and large classes compare.
 * The ramp stops at a mid blue on which dark text still has 5:1 contrast: no shade leaves a count
 * unreadable (between dark and white text there is a band where neither reaches WCAG's 4.5:1).
 */
function shade(frac: number): string {
  const from = [241, 245, 251];
  const to = [90, 135, 228];
  const c = from.map((f, i) => Math.round(f + (to[i] - f) * frac));
  return `rgb(${c.join(",")})`;
}

/** A confusion matrix: rows are true classes, columns predicted ones, counts in the cells. */
export function HeatMap(props: { matrix: number[][]; names: string[]; title: string }) {
  const k = props.matrix.length;
  // Wide enough for the largest count (IMDB's test split has five-digit cells).
  const digits = String(Math.max(0, ...props.matrix.flat())).length;
  const cell = Math.max(44, digits * 9 + 16);
  const left = 120;
  const top = 30;
  const size = left + k * cell + 4;
  const rowSums = props.matrix.map((r) => r.reduce((a, b) => a + b, 0));
  const summary = props.matrix
    .map((r, t) => `true ${props.names[t]}: ${r.map((n, p) => `${n} as ${props.names[p]}`).join(", ")}`)
    .join("; ");
  return (
    <svg
      class="chart heatmap"
      role="img"
      aria-label={`${props.title}. ${summary}`}
      viewBox={`0 0 ${size} ${top + k * cell + 4}`}
      width={size}
    >
      {props.names.map((name, p) => (
        <text key={`c${name}`} x={left + p * cell + cell / 2} y={top - 10} text-anchor="middle" class="label">
          <title>{`predicted ${name}`}</title>
          {short(name, 6)}
        </text>
      ))}
      {props.matrix.map((r, t) => (
        <g key={props.names[t]}>
          <text x={left - 8} y={top + t * cell + cell / 2 + 5} text-anchor="end" class="label">
            <title>{`true ${props.names[t]}`}</title>
            {short(props.names[t], 16)}
          </text>
          {r.map((n, p) => {
            const frac = rowSums[t] ? n / rowSums[t] : 0;
            const x = left + p * cell;
            const y = top + t * cell;
            return (
              <g key={props.names[p]}>
                <title>{`true ${props.names[t]}, predicted ${props.names[p]}: ${n} (${(frac * 100).toFixed(0)}% of the row)`}</title>
                <rect x={x} y={y} width={cell - 2} height={cell - 2} rx={3} fill={shade(frac)} />
                <text x={x + cell / 2 - 1} y={y + cell / 2 + 4} text-anchor="middle" class="count">
                  {n}
                </text>
              </g>
            );
          })}
        </g>
      ))}
    </svg>
  );
}
