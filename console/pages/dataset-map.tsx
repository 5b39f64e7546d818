/**
 * The dataset's embeddings as a 2-D map (`GET /v1/datasets/{dataset}/map`, PCA computed and
 * stored by the server): an SVG scatter coloured by label with a legend. Hovering a point, or
 * stepping through the points with the slider (the keyboard's way), shows the item: its text, or
 * the image itself (`GET …/files?path=`, fetched with the key and shown from a blob URL).
 */
import { useEffect, useState } from "preact/hooks";
import { api, apiKey, seg } from "../api.ts";
import { num, pct } from "../format.ts";
import { Show, useApi } from "../load.tsx";

export interface MapPoint {
  id: string;
  x: number;
  y: number;
  label?: string;
  text?: string;
  image?: string;
}
export interface DatasetMap {
  backbone: string;
  method: string;
  explained: number[];
  total: number;
  points: MapPoint[];
}

/** Distinct hues with at least 3:1 contrast on white (WCAG's bar for graphics). */
const PALETTE = ["#1d4ed8", "#c2410c", "#047857", "#be185d", "#6d28d9", "#0e7490", "#a16207", "#4d7c0f"];
const OTHER = "#4b5563";
const W = 360;
const H = 280;
const PAD = 8;

export function EmbeddingMap(props: { dataset: string; backbone: string }) {
  const loaded = useApi(
    () => api<DatasetMap>(`v1/datasets/${seg(props.dataset)}/map?backbone=${seg(props.backbone)}`),
    [props.dataset, props.backbone],
  );
  return (
    <section aria-labelledby="map-h">
      <h2 id="map-h">Map of the embeddings</h2>
      <Show loaded={loaded} what="the map">
        {(map) => <Scatter map={map} dataset={props.dataset} />}
      </Show>
    </section>
  );
}

/** Labels by count, each with its colour (past the palette: grey, "other"). */
function legendOf(points: MapPoint[]): Array<{ label: string; count: number; colour: string }> {
  const counts = new Map<string, number>();
  for (const p of points) counts.set(p.label ?? "(none)", (counts.get(p.label ?? "(none)") ?? 0) + 1);
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .map(([label, count], i) => ({ label, count, colour: PALETTE[i] ?? OTHER }));
}

/**
 * Points → the drawing, one unit the same length on both axes (a second axis that explains
 * little looks flat, as it should), centred.
 */
function scales(points: MapPoint[]): { sx: (v: number) => number; sy: (v: number) => number } {
  const xs = points.map((p) => p.x);
  const ys = points.map((p) => p.y);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const unit = Math.min((W - 2 * PAD) / (x1 - x0 || 1), (H - 2 * PAD) / (y1 - y0 || 1));
  return {
    sx: (v) => W / 2 + (v - (x0 + x1) / 2) * unit,
    sy: (v) => H / 2 - (v - (y0 + y1) / 2) * unit,
  };
}

function Scatter({ map, dataset }: { map: DatasetMap; dataset: string }) {
  const [sel, setSel] = useState(0);
  const legend = legendOf(map.points);
  const colour = new Map(legend.map((l) => [l.label, l.colour]));
  const { sx, sy } = scales(map.points);
  const summary = legend.map((l) => `${l.label}: ${l.count}`).join(", ");
  const chosen = map.points[sel];
  if (map.points.length === 0) return <p>No embedded items to draw.</p>;
  return (
    <>
      <p class="note">
        {map.method.toUpperCase()} of {num(map.points.length)} of {num(map.total)} embedded items (
        {map.backbone}); the axes hold {pct(map.explained[0] ?? 0)} and {pct(map.explained[1] ?? 0)} of their
        variance.
      </p>
      <div class="map">
        <svg
          class="chart scatter"
          role="img"
          aria-label={`Embedding map. ${summary}`}
          viewBox={`0 0 ${W} ${H}`}
        >
          {map.points.map((p, i) => (
            // biome-ignore lint/a11y/noStaticElementInteractions: hover is the mouse's shortcut; the slider below is the keyboard's way to the same points.
            <circle
              key={p.id}
              cx={sx(p.x)}
              cy={sy(p.y)}
              r={i === sel ? 6 : 3.5}
              fill={colour.get(p.label ?? "(none)")}
              class={i === sel ? "pt on" : "pt"}
              data-label={p.label ?? ""}
              onMouseEnter={() => setSel(i)}
            />
          ))}
        </svg>
        <ul class="legend" aria-label="Labels on the map">
          {legend.map((l) => (
            <li key={l.label}>
              <svg width="12" height="12" aria-hidden="true">
                <circle cx="6" cy="6" r="5" fill={l.colour} />
              </svg>{" "}
              {l.label} ({num(l.count)})
            </li>
          ))}
        </ul>
      </div>
      <label for="map-point">Point</label>
      <input
        id="map-point"
        type="range"
        min={0}
        max={map.points.length - 1}
        value={sel}
        aria-valuetext={chosen ? `${chosen.id} (${chosen.label ?? "no label"})` : undefined}
        onInput={(e) => setSel(Number((e.target as HTMLInputElement).value))}
      />
      {chosen && <PointDetail point={chosen} dataset={dataset} />}
    </>
  );
}

function PointDetail({ point, dataset }: { point: MapPoint; dataset: string }) {
  return (
    <div class="point" aria-live="polite">
      <p>
        <code>{point.id}</code> · {point.label ?? "no label"}
      </p>
      {point.text !== undefined && <blockquote>{point.text}</blockquote>}
      {point.image !== undefined && <Thumb dataset={dataset} path={point.image} alt={`${point.id}`} />}
    </div>
  );
}

/**
 * A dataset file through the API with the key (an <img src> or <audio src> could not send it), as
 * a blob URL, revoked when the file changes or the component goes.
 */
export function useFileUrl(dataset: string, path: string): string | undefined {
  const [url, setUrl] = useState<string>();
  useEffect(() => {
    let made: string | undefined;
    let live = true;
    const key = apiKey.get();
    fetch(`v1/datasets/${seg(dataset)}/files?path=${encodeURIComponent(path)}`, {
      headers: key ? { "x-api-key": key } : {},
    })
      .then((res) => (res.ok ? res.blob() : undefined))
      .then((blob) => {
        if (!blob || !live) return;
        made = URL.createObjectURL(blob);
        setUrl(made);
      });
    return () => {
      live = false;
      if (made) URL.revokeObjectURL(made);
    };
  }, [dataset, path]);
  return url;
}

/** The image through the API with the key, from a blob URL. */
export function Thumb(props: { dataset: string; path: string; alt: string; size?: number }) {
  const url = useFileUrl(props.dataset, props.path);
  const size = props.size ?? 96;
  return url ? <img class="thumb" src={url} alt={props.alt} width={size} height={size} /> : null;
}
