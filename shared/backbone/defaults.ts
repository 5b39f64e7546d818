/**
 * Which backbone a dataset uses when none is named, and whether a named one can embed it. A
 * dataset's rows carry their modality, so a folder of photos gets the image default and a
 * text backbone is refused for it up front — rather than "embedding" it into 0 items.
 */
import type { Config } from "../config.ts";
import type { DatasetStatus } from "../datasets/status.ts";
import { ValidationError } from "../errors.ts";
import type { BackboneSpec } from "./spec.ts";

type Defaults = Pick<Config, "defaultBackbone" | "defaultImageBackbone" | "defaultAudioBackbone">;
type Dataset = Pick<DatasetStatus, "dataset" | "modalities" | "imported">;

function defaultFor(modality: string, defaults: Defaults): string | undefined {
  if (modality === "text") return defaults.defaultBackbone;
  if (modality === "image") return defaults.defaultImageBackbone;
  if (modality === "audio") return defaults.defaultAudioBackbone;
  return undefined;
}

function present(status: Dataset): Array<[string, number]> {
  return Object.entries(status.modalities).filter(([, n]) => n > 0);
}

function rows(n: number, modality: string): string {
  return `${n} ${modality} row${n === 1 ? "" : "s"}`;
}

/** "4 text rows and 1 image row" */
function describeRows(status: Dataset): string {
  const parts = present(status).map(([m, n]) => rows(n, m));
  return parts.length ? parts.join(" and ") : "no rows";
}

/** The backbone a dataset embeds and trains with when none is named. */
export function defaultBackboneFor(
  status: Dataset | undefined,
  defaults: Defaults,
  /** `text`: a dataset of several modalities gets the text default instead of an error (reports). */
  opts: { mixed?: "refuse" | "text" } = {},
): string {
  if (!status) return defaults.defaultBackbone;
  if (status.imported) return status.imported.backbone;
  const modalities = present(status).map(([m]) => m);
  if (modalities.length === 0) return defaults.defaultBackbone;
  if (modalities.length > 1 && opts.mixed === "text") return defaults.defaultBackbone;
  if (modalities.length > 1) {
    const options = modalities.map((m) => `${m}: ${defaultFor(m, defaults) ?? "none yet"}`).join(", ");
    throw new ValidationError(
      `dataset ${status.dataset} holds ${describeRows(status)}, so there is no single default backbone: ` +
        `name one with --backbone (${options}); each embeds only rows of its own modality`,
      { field: "backbone" },
    );
  }
  const chosen = defaultFor(modalities[0], defaults);
  if (!chosen) {
    throw new ValidationError(
      `dataset ${status.dataset} holds ${describeRows(status)} and there is no default ${modalities[0]} backbone yet: ` +
        "name one with --backbone",
      { field: "backbone" },
    );
  }
  return chosen;
}

/** Refuses a backbone none of whose modality's rows the dataset holds, naming both and the fix. */
export function assertBackboneFits(
  status: Dataset | undefined,
  spec: BackboneSpec,
  defaults: Defaults,
): void {
  if (!status || (status.modalities[spec.modality] ?? 0) > 0) return;
  if (present(status).length === 0) return; // nothing to embed either way; ingest said why
  let fix: string;
  try {
    fix = `use --backbone ${defaultBackboneFor(status, defaults)}`;
  } catch {
    fix = "name a backbone of the dataset's modality with --backbone";
  }
  throw new ValidationError(
    `backbone ${spec.id} embeds ${spec.modality}, but dataset ${status.dataset} holds ${describeRows(status)}: ${fix}`,
    { field: "backbone" },
  );
}

/** The recommended backbones for a dataset's rows: its one modality's set. */
export function recommendedBackbonesFor(
  status: Dataset | undefined,
  recommended: Readonly<Record<string, readonly string[]>>,
): string[] {
  const modalities = status ? present(status).map(([m]) => m) : [];
  if (status?.imported || modalities.length !== 1) {
    const why = status?.imported
      ? `its vectors were imported under ${status.imported.backbone}`
      : `it holds ${status ? describeRows(status) : "no rows"}`;
    throw new ValidationError(
      `dataset ${status?.dataset ?? "?"} has no recommended backbones: ${why}; name them with --backbones a,b`,
      { field: "backbones" },
    );
  }
  const set = recommended[modalities[0]];
  if (!set?.length) {
    throw new ValidationError(
      `there are no recommended ${modalities[0]} backbones: name them with --backbones a,b`,
      {
        field: "backbones",
      },
    );
  }
  return [...set];
}
