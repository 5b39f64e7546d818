/**
 * Manifest parsing and row validation. A manifest is JSONL or CSV; every row is checked on its
 * own so one bad row never hides the good ones. Rows are reported by 1-based physical line.
 * Manifests are read a line at a time (`readManifest`), never whole.
 */
import { Readable } from "node:stream";
import { parse as parseCsvStream } from "csv-parse";
import { parse as parseCsv } from "csv-parse/sync";
import { z } from "zod";
import { ValidationError, zodIssuePath } from "../errors.ts";
import { assertRelativeFilePath, type ManifestFormat } from "../layout.ts";
import { IdHashes } from "./id-hashes.ts";
import { type PhysicalLine, physicalLines } from "./lines.ts";

export const MAX_TEXT_CHARS = 100_000;
export const MAX_ID_CHARS = 256;
export const MAX_REJECTIONS_LISTED = 1_000;
export const INPUT_FIELDS = ["text", "image", "audio"] as const;
const KNOWN_FIELDS = ["id", ...INPUT_FIELDS, "label", "split"];

export // Labels become keys of per-class records (scores, metrics); this one would not be a key there.
const LabelName = z
  .string()
  .min(1, "label must not be empty")
  .max(256)
  .refine((l) => l !== "__proto__", "label must not be __proto__");

export const Label = z.union([
  LabelName,
  z.number().finite(),
  // An empty list is a real answer for multi-label data: none of the labels apply.
  z.array(LabelName).max(1_000),
]);

const FilePath = z
  .string()
  .min(1)
  .refine(
    (p) => {
      try {
        assertRelativeFilePath(p);
        return true;
      } catch {
        return false;
      }
    },
    { message: "must be a relative path below the dataset's files/ folder, without '..'" },
  );

export const ManifestRow = z
  .strictObject({
    id: z.union([z.string().min(1).max(MAX_ID_CHARS), z.number().int()]).optional(),
    text: z
      .string()
      .max(MAX_TEXT_CHARS, `text is longer than ${MAX_TEXT_CHARS} characters`)
      .refine((t) => t.trim().length > 0, "text must not be blank")
      .optional(),
    image: FilePath.optional(),
    audio: FilePath.optional(),
    label: Label.optional(),
    split: z.enum(["train", "test"]).optional(),
  })
  .superRefine((row, ctx) => {
    const present = INPUT_FIELDS.filter((f) => row[f] !== undefined);
    if (present.length !== 1) {
      ctx.addIssue({
        code: "custom",
        path: present.length === 0 ? ["text"] : [present[1]],
        message:
          present.length === 0
            ? "row has no input: set exactly one of text, image, audio"
            : `row has ${present.length} inputs (${present.join(", ")}): set exactly one`,
      });
    }
  });
export type ManifestRowInput = z.infer<typeof ManifestRow>;

/** A validated row as stored in `_rows.jsonl`. */
export const DatasetRow = z.object({
  id: z.string(),
  line: z.number().int(),
  text: z.string().optional(),
  image: z.string().optional(),
  audio: z.string().optional(),
  /** Imported rows (`import-embeddings`): sha256 of the row's float32 vector; `text` is then informational. */
  vector: z.string().optional(),
  label: z.union([z.string(), z.number(), z.array(z.string())]).optional(),
  split: z.enum(["train", "test"]).optional(),
});
export type DatasetRow = z.infer<typeof DatasetRow>;

export function modalityOf(row: {
  text?: unknown;
  image?: unknown;
  vector?: unknown;
}): "text" | "image" | "audio" | "embedding" {
  if (row.vector !== undefined) return "embedding";
  return row.text !== undefined ? "text" : row.image !== undefined ? "image" : "audio";
}

export interface Rejection {
  line: number;
  id?: string;
  field?: string;
  reason: string;
}

export interface ParsedManifest {
  rows: DatasetRow[];
  rejected: Rejection[];
  /** Rows seen, excluding blank lines and the CSV header. */
  total: number;
}

/** Where a manifest's lines come from; read more than once (ids first, then rows). */
export type LineSource = () => AsyncIterable<PhysicalLine>;

/** What `readManifest` hands on, in line order: rows and rejections interleaved. */
export interface ManifestSink {
  row(row: DatasetRow): void | Promise<void>;
  reject(rejection: Rejection): void | Promise<void>;
}

/** One record before validation: a candidate value, or already a rejection. */
type Entry = { line: number; value: unknown } | { rejection: Rejection };

/**
 * Why a row failed its schema, from the first issue: the field and a reason that names it. An
 * unknown field lists the valid ones (`knownFields`), so a typo is fixed in one go. Manifests and
 * imported rows word their rejections this one way.
 */
export function describeRowIssue(
  error: z.ZodError,
  knownFields: readonly string[],
): { field?: string; reason: string } {
  const issue = error.issues[0];
  if (issue.code === "unrecognized_keys") {
    return {
      field: issue.keys[0],
      reason: `unknown field ${issue.keys.map((k) => `'${k}'`).join(", ")} (valid: ${knownFields.join(", ")})`,
    };
  }
  const field = zodIssuePath(error, "dots") || undefined;
  return { field, reason: field ? `${field}: ${issue.message}` : issue.message };
}

/** A row on its own; rows without an id get `line-<n>`, which is stable for an unchanged manifest. */
function checkRow(line: number, value: unknown): { row: DatasetRow } | { rejection: Rejection } {
  const parsed = ManifestRow.safeParse(value);
  if (!parsed.success) {
    const rawId = (value as { id?: unknown } | null)?.id;
    const idHint = typeof rawId === "string" || typeof rawId === "number" ? String(rawId) : undefined;
    return { rejection: { line, id: idHint, ...describeRowIssue(parsed.error, KNOWN_FIELDS) } };
  }
  const r = parsed.data;
  const row: DatasetRow = { id: r.id === undefined ? `line-${line}` : String(r.id), line };
  if (r.text !== undefined) row.text = r.text;
  if (r.image !== undefined) row.image = r.image;
  if (r.audio !== undefined) row.audio = r.audio;
  if (r.label !== undefined) row.label = r.label;
  if (r.split !== undefined) row.split = r.split;
  return { row };
}

/**
 * Reads a manifest a line at a time, in two passes, and hands every row or rejection to `sink` in
 * line order. Pass one only notes each record's id hash (8 bytes a row); pass two validates and
 * rejects a repeated id after its first valid occurrence, comparing only the ids whose hash
 * repeats. Memory: one line (a CSV record up to `MAX_RECORD_LINES`) plus 8 bytes a row.
 */
export async function readManifest(
  open: LineSource,
  format: ManifestFormat,
  sink: ManifestSink,
): Promise<{ total: number }> {
  const entries = format === "csv" ? await csvEntries(open) : () => jsonlEntries(open);
  const repeated = await repeatedIdHashes(entries);
  const firstSeen = new Map<string, number>();
  let total = 0;
  for await (const e of entries()) {
    total++;
    const checked = "rejection" in e ? e : checkRow(e.line, e.value);
    if ("rejection" in checked) {
      await sink.reject(checked.rejection);
      continue;
    }
    const { row } = checked;
    if (repeated.has(IdHashes.of(row.id))) {
      const first = firstSeen.get(row.id);
      if (first !== undefined) {
        const reason = `duplicate id ${JSON.stringify(row.id)} (first seen on line ${first})`;
        await sink.reject({ line: row.line, id: row.id, field: "id", reason });
        continue;
      }
      firstSeen.set(row.id, row.line);
    }
    await sink.row(row);
  }
  return { total };
}

/**
 * The hashes of ids that more than one record carries (or would get: `line-<n>`). Every record
 * counts, valid or not, so this is a superset of the valid rows' repeats, found without
 * validating. A CSV whose body turns out not to parse whole is read again, record by record.
 */
async function repeatedIdHashes(entries: () => AsyncIterable<Entry>): Promise<Set<number>> {
  for (;;) {
    const ids = new IdHashes();
    try {
      for await (const e of entries()) {
        if ("rejection" in e) continue;
        const id = (e.value as { id?: unknown }).id;
        if (id === undefined) ids.add(`line-${e.line}`);
        else if (typeof id === "string" || typeof id === "number") ids.add(String(id));
      }
      return ids.repeated();
    } catch (err) {
      if (!(err instanceof NotWholeCsv)) throw err;
    }
  }
}

async function* jsonlEntries(open: LineSource): AsyncGenerator<Entry> {
  for await (const { no: line, text, badUtf8 } of open()) {
    if (text.trim() === "") continue;
    if (badUtf8) {
      yield { rejection: { line, reason: "line is not valid UTF-8" } };
      continue;
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      yield { rejection: { line, reason: `not valid JSON: ${(err as Error).message}` } };
      continue;
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      yield { rejection: { line, reason: "each line must be a JSON object" } };
      continue;
    }
    yield { line, value };
  }
}

/**
 * The CSV's entries, once its header is checked (a bad header fails the whole manifest, naming its
 * line). Records are cut by csv-parse over the whole body when that parses; otherwise record by
 * record (`csvRecordsOneByOne`), so a record with broken quoting costs its line only.
 */
async function csvEntries(open: LineSource): Promise<() => AsyncIterable<Entry>> {
  const header = await csvHeader(open);
  if (!header) return async function* () {};
  const from = header.line; // records start on the line after the header
  // Unknown until the first read has been through the whole body (see `repeatedIdHashes`).
  let wellFormed: boolean | undefined;
  return async function* () {
    const bad = new Set<number>();
    const lines = afterLine(open, from, bad);
    const records = wellFormed === false ? csvRecordsOneByOne(lines) : csvRecordsWhole(lines, from);
    try {
      yield* csvRecordEntries(records, header.columns, bad);
    } catch (err) {
      if (!(err instanceof NotWholeCsv)) throw err;
      if (wellFormed) throw err.cause; // parsed whole before: the file failed, not the CSV
      wellFormed = false;
      throw err;
    }
    wellFormed ??= true; // read whole to the end without a parse error
  };
}

/** Validated-to-be entries of CSV records: UTF-8 and column counts checked, empty cells left out. */
async function* csvRecordEntries(
  records: AsyncIterable<CsvRecord | { rejection: Rejection }>,
  columns: string[],
  bad: Set<number>,
): AsyncGenerator<Entry> {
  for await (const r of records) {
    if ("rejection" in r) {
      yield r;
      continue;
    }
    const { record, line, end } = r;
    let badUtf8 = false;
    for (const l of bad) {
      if (l >= line && l <= end) badUtf8 = true;
      if (l <= end) bad.delete(l); // records come in order: lines up to here are done
    }
    if (badUtf8) {
      yield { rejection: { line, reason: "line is not valid UTF-8" } };
      continue;
    }
    if (record.length !== columns.length) {
      const reason = `expected ${columns.length} columns, found ${record.length}`;
      yield { rejection: { line, reason } };
      continue;
    }
    // CSV has no types and no absent values: empty cells mean "not set".
    const value: Record<string, string> = {};
    columns.forEach((h, i) => {
      if (record[i] !== "") value[h] = record[i];
    });
    yield { line, value };
  }
}

/** The first non-blank line, checked: known columns, none repeated, well-formed UTF-8 and CSV. */
async function csvHeader(open: LineSource): Promise<{ line: number; columns: string[] } | undefined> {
  let first: PhysicalLine | undefined;
  for await (const l of open()) {
    if (l.text.trim() !== "") {
      first = l;
      break;
    }
  }
  if (!first) return undefined;
  const field = `line ${first.no}`;
  if (first.badUtf8) throw new ValidationError("CSV header is not valid UTF-8", { field });
  let columns: string[];
  try {
    columns = (parseCsv(first.text, { trim: true }) as string[][])[0] ?? [];
  } catch (err) {
    throw new ValidationError(`CSV header is malformed: ${(err as Error).message}`, { field });
  }
  const repeated = columns.filter((h, i) => columns.indexOf(h) !== i);
  if (repeated.length > 0) {
    throw new ValidationError(`CSV header repeats column ${repeated.map((c) => `'${c}'`).join(", ")}`, {
      field,
    });
  }
  const unknown = columns.filter((h) => !KNOWN_FIELDS.includes(h));
  if (unknown.length > 0) {
    throw new ValidationError(
      `CSV header has unknown column ${unknown.map((c) => `'${c}'`).join(", ")} (valid: ${KNOWN_FIELDS.join(", ")})`,
      { field },
    );
  }
  return { line: first.no, columns };
}

/** The lines after line `from`, noting the numbers of those that are not valid UTF-8 in `bad`. */
async function* afterLine(open: LineSource, from: number, bad: Set<number>): AsyncGenerator<PhysicalLine> {
  for await (const l of open()) {
    if (l.no <= from) continue;
    if (l.badUtf8) bad.add(l.no);
    yield l;
  }
}

/** The text csv-parse sees: the lines joined by LF, in chunks of about 64 KiB. */
async function* joined(lines: AsyncIterable<PhysicalLine>): AsyncGenerator<string> {
  let chunk = "";
  let first = true;
  for await (const l of lines) {
    chunk += first ? l.text : `\n${l.text}`;
    first = false;
    if (chunk.length >= 1 << 16) {
      yield chunk;
      chunk = "";
    }
  }
  if (chunk) yield chunk;
}

const WHOLE_OPTIONS = { relax_column_count: true, skip_empty_lines: true, info: true, raw: true } as const;

/** Thrown by `csvRecordsWhole` when the body does not parse whole (its `cause`: csv-parse's error). */
class NotWholeCsv extends Error {}

interface CsvRecord {
  record: string[];
  /** First and last (1-based) physical line of the record. */
  line: number;
  end: number;
}

async function* csvRecordsWhole(lines: AsyncIterable<PhysicalLine>, from: number): AsyncGenerator<CsvRecord> {
  type Parsed = { record: string[]; info: { lines: number; raw?: string } };
  const source = Readable.from(joined(lines));
  const parser = parseCsvStream(WHOLE_OPTIONS);
  // A read error ends the parse too; `pipe` alone would leave it an unhandled 'error' event.
  source.on("error", (err) => parser.destroy(err));
  source.pipe(parser);
  const it = (parser as AsyncIterable<Parsed>)[Symbol.asyncIterator]();
  try {
    for (;;) {
      let next: IteratorResult<Parsed>;
      try {
        next = await it.next();
      } catch (cause) {
        throw new NotWholeCsv("the CSV body does not parse whole", { cause });
      }
      if (next.done) return;
      const { record, info } = next.value;
      // info.lines is where the record ends; quoted fields may span several physical lines.
      const end = info.lines + from;
      const span = (info.raw?.replace(/\n$/, "").match(/\n/g) ?? []).length;
      yield { record, line: end - span, end };
    }
  } finally {
    // Left early (a consumer stopped, or the parse failed): stop reading the file.
    source.destroy();
    parser.destroy();
  }
}

/** A quoted field may span lines, but not more than this: an unclosed quote costs one row, not the file. */
const MAX_RECORD_LINES = 1000;

/**
 * Records one at a time from a look-ahead of at most `MAX_RECORD_LINES` lines: a record ends at the
 * first line end outside quotes (doubled quotes keep the count even).
 */
async function* csvRecordsOneByOne(
  lines: AsyncIterable<PhysicalLine>,
): AsyncGenerator<CsvRecord | { rejection: Rejection }> {
  const it = lines[Symbol.asyncIterator]();
  const ahead: PhysicalLine[] = [];
  let done = false;
  const has = async (i: number): Promise<boolean> => {
    while (ahead.length <= i && !done) {
      const next = await it.next();
      if (next.done) done = true;
      else ahead.push(next.value);
    }
    return ahead.length > i;
  };
  while (await has(0)) {
    const first = ahead[0] as PhysicalLine;
    if (first.text.trim() === "") {
      ahead.shift();
      continue;
    }
    let end = 0;
    let quotes = countQuotes(first.text);
    while (quotes % 2 === 1 && end + 1 < MAX_RECORD_LINES && (await has(end + 1))) {
      quotes += countQuotes((ahead[++end] as PhysicalLine).text);
    }
    if (quotes % 2 === 1) {
      yield { rejection: { line: first.no, reason: "malformed CSV: a quote is never closed" } };
      ahead.shift();
      continue;
    }
    try {
      const text = ahead
        .slice(0, end + 1)
        .map((l) => l.text)
        .join("\n");
      const [record] = parseCsv(text, { relax_column_count: true }) as string[][];
      yield { record: record ?? [], line: first.no, end: (ahead[end] as PhysicalLine).no };
      ahead.splice(0, end + 1);
    } catch (err) {
      // A stray quote can make good lines look like the rest of its field: reject this line
      // alone and read on from the next one.
      const reason = (err as Error).message.replace(/ at line \d+/, "");
      yield { rejection: { line: first.no, reason: `malformed CSV: ${reason}` } };
      ahead.shift();
    }
  }
}

function countQuotes(line: string): number {
  let n = 0;
  for (let p = line.indexOf('"'); p !== -1; p = line.indexOf('"', p + 1)) n++;
  return n;
}

/** A whole manifest in memory, parsed (small manifests and tests; ingest streams from a file). */
export async function parseManifest(bytes: Uint8Array, format: ManifestFormat): Promise<ParsedManifest> {
  const out: ParsedManifest = { rows: [], rejected: [], total: 0 };
  const { total } = await readManifest(() => physicalLines([bytes]), format, {
    row: (r) => void out.rows.push(r),
    reject: (r) => void out.rejected.push(r),
  });
  out.total = total;
  return out;
}

export function manifestFormatOf(name: string): ManifestFormat {
  if (name.endsWith(".jsonl") || name.endsWith(".ndjson")) return "jsonl";
  if (name.endsWith(".csv")) return "csv";
  throw new ValidationError(`cannot tell the manifest format of ${name}: use .jsonl or .csv`, {
    field: "manifest",
  });
}
