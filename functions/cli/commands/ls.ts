import { Argument, type Command } from "commander";
import { ValidationError } from "../../../shared/errors.ts";
import { listFeedback } from "../../../shared/feedback/records.ts";
import { assertName } from "../../../shared/layout.ts";
import {
  listAllJobs,
  listBackbones,
  listDatasets,
  listHeads,
  listHeadVersions,
} from "../../../shared/lifecycle/list.ts";
import { context, output } from "../context.ts";

const KINDS = ["datasets", "heads", "versions", "jobs", "backbones", "feedback"] as const;
type Kind = (typeof KINDS)[number];

export function registerLs(program: Command): void {
  program
    .command("ls")
    .description(
      "list datasets, heads, a head's versions, jobs (embedding and batch-prediction) or backbones (--json: an array of records)",
    )
    .addArgument(new Argument("<what>", "what to list").choices(KINDS))
    .argument(
      "[head]",
      "the head whose versions or feedback to list (ls versions <head>, ls feedback <head>)",
    )
    .action(async (what: Kind, head: string | undefined, _opts, cmd: Command) => {
      const { platform, json } = context(cmd);
      const perHead = what === "versions" || what === "feedback";
      if (perHead !== (head !== undefined)) {
        throw new ValidationError(
          perHead ? `ls ${what} needs a head: ls ${what} <head>` : `ls ${what} takes no head`,
          { field: "head" },
        );
      }
      const { records, rows } = await listing(platform.store, what, head);
      output(json, records, table(rows) || `(no ${what})`);
    });
}

type Store = ReturnType<typeof context>["platform"]["store"];

/** The records, and the table a person reads: a header row, then one row per record. */
async function listing(
  store: Store,
  what: Kind,
  head?: string,
): Promise<{ records: unknown[]; rows: string[][] }> {
  switch (what) {
    case "datasets": {
      const records = await listDatasets(store);
      const rows = records.map((d) => [
        d.dataset,
        d.state,
        String(d.rows.accepted),
        Object.keys(d.modalities).join(","),
        d.ingestedAt,
      ]);
      return { records, rows: withHeader(["DATASET", "STATE", "ROWS", "MODALITIES", "INGESTED"], rows) };
    }
    case "heads": {
      const records = await listHeads(store);
      const rows = records.map((h) => [
        h.head,
        h.live ?? "-",
        String(h.versions),
        h.current?.type ?? "-",
        h.current?.dataset?.name ?? "-",
        metric(h.current?.metric),
      ]);
      return { records, rows: withHeader(["HEAD", "LIVE", "VERSIONS", "TYPE", "DATASET", "METRIC"], rows) };
    }
    case "versions": {
      const records = await listHeadVersions(store, head as string);
      const rows = records.map((v) => [
        v.version,
        v.aliases.join(",") || "-",
        v.type ?? "-",
        v.dataset?.name ?? "-",
        metric(v.metric),
        v.createdAt ?? "-",
      ]);
      return {
        records,
        rows: withHeader(["VERSION", "ALIASES", "TYPE", "DATASET", "METRIC", "CREATED"], rows),
      };
    }
    case "jobs":
      return jobListing(store);
    case "feedback":
      return feedbackListing(store, head as string);
    case "backbones": {
      const records = await listBackbones(store);
      const rows = records.map((b) => [
        b.id,
        b.kind ?? "model",
        b.modality,
        String(b.dim),
        b.description ?? "",
      ]);
      return { records, rows: withHeader(["BACKBONE", "KIND", "MODALITY", "DIM", "DESCRIPTION"], rows) };
    }
  }
}

/** Embedding and batch-prediction jobs in one table: what each works on and how far it is. */
async function jobListing(store: Store): Promise<{ records: unknown[]; rows: string[][] }> {
  const records = await listAllJobs(store);
  const rows = records.map((j) =>
    j.kind === "embed"
      ? [
          j.job,
          j.kind,
          j.state,
          `${j.dataset} with ${j.backbone}`,
          `${j.items.toEmbed} to embed`,
          j.updatedAt,
        ]
      : [j.job, j.kind, j.status, `${j.input.dataset} by ${j.head}@${j.version}`, progress(j), j.updatedAt],
  );
  return { records, rows: withHeader(["JOB", "KIND", "STATE", "WHAT", "PROGRESS", "UPDATED"], rows) };
}

/** A head's corrections, oldest first (`headstart feedback`). */
async function feedbackListing(
  store: Store,
  head: string,
): Promise<{ records: unknown[]; rows: string[][] }> {
  const records = await listFeedback(store, assertName("head", head, "head"));
  const rows = records.map((f) => [
    f.id,
    JSON.stringify(f.label),
    f.image !== undefined
      ? `image ${f.image.slice(0, 12)}…`
      : f.audio !== undefined
        ? `audio ${f.audio.slice(0, 12)}…`
        : (f.text ?? "").slice(0, 60),
    f.predictionId ?? "-",
  ]);
  return { records, rows: withHeader(["FEEDBACK", "LABEL", "TEXT", "PREDICTION"], rows) };
}

const progress = (j: { progress: { rowsDone: number; rowsTotal: number } }) =>
  `${j.progress.rowsDone}/${j.progress.rowsTotal} rows`;

const metric = (m?: { name: string; value: number }) => (m ? `${m.name} ${m.value.toFixed(4)}` : "-");

function withHeader(header: string[], rows: string[][]): string[][] {
  return rows.length === 0 ? [] : [header, ...rows];
}

/** Columns padded to their widest cell. */
function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => r[c].length))) ?? [];
  return rows
    .map((r) =>
      r
        .map((cell, c) => cell.padEnd(widths[c]))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}
