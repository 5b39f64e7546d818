/**
 * A reliability diagram (the report's `calibration.reliabilityBefore/After`): per confidence bin,
 * the share of rows predicted right against the mean top probability. A calibrated head lies on
 * the diagonal. Hand-written SVG like charts.tsx: a labelled `role="img"`, a `<title>` per point.
 */

export interface ReliabilityBin {
  lower: number;
  upper: number;
  count: number;
  confidence: number;
  accuracy: number;
}

const SIZE = 260;
const LEFT = 44;
const TOP = 10;
const BOTTOM = 36;

const x = (v: number) => LEFT + v * SIZE;
const y = (v: number) => TOP + (1 - v) * SIZE;
const p2 = (v: number) => v.toFixed(2);

function Series(props: { bins: ReliabilityBin[]; name: string; cls: string }) {
  const used = props.bins.filter((b) => b.count > 0);
  return (
    <g class={props.cls}>
      <polyline points={used.map((b) => `${x(b.confidence)},${y(b.accuracy)}`).join(" ")} fill="none" />
      {used.map((b) => (
        <circle key={b.lower} cx={x(b.confidence)} cy={y(b.accuracy)} r={4}>
          <title>{`${props.name}: ${b.count} rows with confidence ${p2(b.lower)}–${p2(b.upper)}, mean ${p2(b.confidence)}, accuracy ${p2(b.accuracy)}`}</title>
        </circle>
      ))}
    </g>
  );
}

const summary = (bins: ReliabilityBin[]) =>
  bins
    .filter((b) => b.count > 0)
    .map((b) => `${p2(b.confidence)} → ${p2(b.accuracy)} (${b.count})`)
    .join(", ");

export function Reliability(props: { before: ReliabilityBin[]; after: ReliabilityBin[]; title: string }) {
  const ticks = [0, 0.25, 0.5, 0.75, 1];
  const label =
    `${props.title}. Confidence → accuracy (rows) per bin. ` +
    `Before scaling: ${summary(props.before)}. After: ${summary(props.after)}.`;
  return (
    <svg
      class="chart reliability"
      role="img"
      aria-label={label}
      viewBox={`0 0 ${LEFT + SIZE + 16} ${TOP + SIZE + BOTTOM}`}
      width={LEFT + SIZE + 16}
    >
      {ticks.map((t) => (
        <g key={t} class="grid">
          <line x1={x(0)} x2={x(1)} y1={y(t)} y2={y(t)} />
          <text x={LEFT - 6} y={y(t) + 4} text-anchor="end" class="label">
            {t}
          </text>
          <text x={x(t)} y={TOP + SIZE + 16} text-anchor="middle" class="label">
            {t}
          </text>
        </g>
      ))}
      <line class="diagonal" x1={x(0)} y1={y(0)} x2={x(1)} y2={y(1)} />
      <text x={x(0.5)} y={TOP + SIZE + 32} text-anchor="middle" class="label">
        confidence
      </text>
      <Series bins={props.before} name="before" cls="before" />
      <Series bins={props.after} name="after" cls="after" />
    </svg>
  );
}
