/**
 * The drift page's charts, hand-written SVG as in charts.tsx: each test's p-value against its
 * threshold alpha (on a −log₁₀ scale, where smaller p-values reach further right and the
 * threshold is a line: a bar past it is drift), and the shift of a head's predicted-label mix.
 */

export interface DriftMark {
  /** What the row is: "This check", "Scheduled check, …". */
  name: string;
  pValue: number;
  alpha: number;
  /** The test statistic (MMD²), written beside the bar. */
  score: number;
}

const nlog = (p: number) => -Math.log10(Math.max(p, 1e-12));
const pText = (p: number) => (p >= 0.01 ? p.toFixed(3) : p.toExponential(1));

/** One bar per test: −log₁₀ p against the dashed −log₁₀ alpha; past the line is drift. */
export function DriftTests(props: { marks: DriftMark[]; title: string }) {
  const labelW = 150;
  const barW = 240;
  const row = 34;
  const top = 36;
  const width = labelW + barW + 110;
  const alpha = props.marks[0]?.alpha ?? 0.05;
  const span = Math.max(3, ...props.marks.map((m) => nlog(m.pValue)), nlog(alpha) * 2);
  const x = (p: number) => labelW + (nlog(p) / span) * barW;
  const ticks = [1, 0.1, 0.01, 0.001].filter((p) => nlog(p) <= span);
  const summary = props.marks
    .map(
      (m) =>
        `${m.name}: p ${pText(m.pValue)} ${m.pValue < m.alpha ? "<" : "≥"} alpha ${m.alpha}, MMD² ${m.score.toFixed(4)}`,
    )
    .join("; ");
  const height = top + props.marks.length * row + 8;
  return (
    <svg
      class="chart drift"
      role="img"
      aria-label={`${props.title}. ${summary}`}
      viewBox={`0 0 ${width} ${height}`}
      width={width}
    >
      <text x={labelW - 8} y={12} text-anchor="end" class="tick">
        p-value
      </text>
      {ticks.map((p) => (
        <text key={p} x={x(p)} y={12} text-anchor="middle" class="tick">
          {String(p)}
        </text>
      ))}
      <text x={x(alpha) + 4} y={28} class="tick">
        {`alpha ${alpha}`}
      </text>
      <line x1={x(alpha)} x2={x(alpha)} y1={18} y2={height - 4} class="threshold" />
      {props.marks.map((m, i) => {
        const y = top + i * row;
        const drift = m.pValue < m.alpha;
        return (
          <g key={m.name}>
            <title>{`${m.name}: p = ${pText(m.pValue)} (alpha ${m.alpha}), MMD² ${m.score.toFixed(4)}: ${drift ? "drift" : "no drift"}`}</title>
            <text x={labelW - 8} y={y + 18} text-anchor="end" class="label">
              {m.name.length > 20 ? `${m.name.slice(0, 19)}…` : m.name}
            </text>
            <rect
              x={labelW}
              y={y + 5}
              width={Math.max(2, x(m.pValue) - labelW)}
              height={row - 12}
              rx={3}
              class={drift ? "bar drift" : "bar"}
            />
            <text x={Math.max(x(m.pValue), x(alpha)) + 6} y={y + 18} class="value">
              p {pText(m.pValue)}
              {drift ? " drift" : ""}
            </text>
          </g>
        );
      })}
    </svg>
  );
}

/** A head's predicted-label shares on each side: reference and current, bar by bar. */
export function LabelShift(props: {
  reference: Record<string, number>;
  current: Record<string, number>;
  title: string;
}) {
  const labels = [...new Set([...Object.keys(props.reference), ...Object.keys(props.current)])].sort();
  const labelW = 100;
  const barW = 200;
  const bar = 14;
  const group = bar * 2 + 14;
  const width = labelW + barW + 70;
  const pct = (x: number) => `${(x * 100).toFixed(0)}%`;
  const summary = labels
    .map((l) => `${l}: ${pct(props.reference[l] ?? 0)} → ${pct(props.current[l] ?? 0)}`)
    .join(", ");
  return (
    <svg
      class="chart shift"
      role="img"
      aria-label={`${props.title}. ${summary}`}
      viewBox={`0 0 ${width} ${labels.length * group + 26}`}
      width={width}
    >
      <rect x={labelW} y={2} width={10} height={10} class="ref" />
      <text x={labelW + 14} y={11} class="tick">
        reference
      </text>
      <rect x={labelW + 100} y={2} width={10} height={10} class="cur" />
      <text x={labelW + 114} y={11} class="tick">
        current
      </text>
      {labels.map((l, i) => {
        const y = 22 + i * group;
        const sides = [
          ["ref", props.reference[l] ?? 0],
          ["cur", props.current[l] ?? 0],
        ] as const;
        return (
          <g key={l}>
            <title>{`${l}: ${pct(sides[0][1])} of the reference, ${pct(sides[1][1])} now`}</title>
            <text x={labelW - 8} y={y + bar + 4} text-anchor="end" class="label">
              {l.length > 12 ? `${l.slice(0, 11)}…` : l}
            </text>
            {sides.map(([cls, v], j) => (
              <g key={cls}>
                <rect x={labelW} y={y + j * bar} width={Math.max(1, v * barW)} height={bar - 2} class={cls} />
                <text x={labelW + v * barW + 5} y={y + j * bar + 11} class="tick">
                  {pct(v)}
                </text>
              </g>
            ))}
          </g>
        );
      })}
    </svg>
  );
}
