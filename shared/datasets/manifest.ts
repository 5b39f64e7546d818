/**
 * Manifest parsing and row validation. A manifest is JSONL or CSV; every row is checked on its
 * own so one bad row never hides the good ones. Rows are reported by 1-based physical line.
 */
import { parse as parseCsv } from "csv-parse/sync";
import { z } from "zod";
import { ValidationError } from "../errors.ts";
import { assertRelativeFilePath, type ManifestFormat } from "../layout.ts";

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

const fatalUtf8 = new TextDecoder("utf-8", { fatal: true });
const lenientUtf8 = new TextDecoder("utf-8");

/** Splits raw bytes into physical lines, decoding each strictly so one bad byte costs one row. */
function decodeLines(bytes: Uint8Array): { lines: string[]; badUtf8: Set<number> } {
  const lines: string[] = [];
  const badUtf8 = new Set<number>();
  let start = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  for (let i = start; i <= bytes.length; i++) {
    if (i === bytes.length || bytes[i] === 0x0a) {
      let end = i;
      if (end > start && bytes[end - 1] === 0x0d) end--;
      const chunk = bytes.subarray(start, end);
      try {
        lines.push(fatalUtf8.decode(chunk));
      } catch {
        badUtf8.add(lines.length + 1);
        lines.push(lenientUtf8.decode(chunk));
      }
      start = i + 1;
    }
  }
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  return { lines, badUtf8 };
}

function describeIssues(error: z.ZodError): { field?: string; reason: string } {
  const issue = error.issues[0];
  if (issue.code === "unrecognized_keys") {
    return {
      field: issue.keys[0],
      reason: `unknown field ${issue.keys.map((k) => `'${k}'`).join(", ")} (valid: ${KNOWN_FIELDS.join(", ")})`,
    };
  }
  const field = issue.path.length ? issue.path.join(".") : undefined;
  return { field, reason: field ? `${field}: ${issue.message}` : issue.message };
}

/**
 * Validates rows one by one. Duplicate ids are rejected after the first occurrence; rows
 * without an id get `line-<n>`, which is stable for an unchanged manifest.
 */
function validateRows(candidates: Array<{ line: number; value: unknown }>, out: ParsedManifest): void {
  const seen = new Map<string, number>();
  for (const { line, value } of candidates) {
    const parsed = ManifestRow.safeParse(value);
    const rawId = (value as { id?: unknown } | null)?.id;
    const idHint = typeof rawId === "string" || typeof rawId === "number" ? String(rawId) : undefined;
    if (!parsed.success) {
      out.rejected.push({ line, id: idHint, ...describeIssues(parsed.error) });
      continue;
    }
    const r = parsed.data;
    const id = r.id === undefined ? `line-${line}` : String(r.id);
    const first = seen.get(id);
    if (first !== undefined) {
      out.rejected.push({
        line,
        id,
        field: "id",
        reason: `duplicate id ${JSON.stringify(id)} (first seen on line ${first})`,
      });
      continue;
    }
    seen.set(id, line);
    const row: DatasetRow = { id, line };
    if (r.text !== undefined) row.text = r.text;
    if (r.image !== undefined) row.image = r.image;
    if (r.audio !== undefined) row.audio = r.audio;
    if (r.label !== undefined) row.label = r.label;
    if (r.split !== undefined) row.split = r.split;
    out.rows.push(row);
  }
}

function parseJsonlManifest(bytes: Uint8Array): ParsedManifest {
  const { lines, badUtf8 } = decodeLines(bytes);
  const out: ParsedManifest = { rows: [], rejected: [], total: 0 };
  const candidates: Array<{ line: number; value: unknown }> = [];
  lines.forEach((text, i) => {
    const line = i + 1;
    if (text.trim() === "") return;
    out.total++;
    if (badUtf8.has(line)) {
      out.rejected.push({ line, reason: "line is not valid UTF-8" });
      return;
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      out.rejected.push({ line, reason: `not valid JSON: ${(err as Error).message}` });
      return;
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      out.rejected.push({ line, reason: "each line must be a JSON object" });
      return;
    }
    candidates.push({ line, value });
  });
  validateRows(candidates, out);
  return out;
}

/** A quoted field may span lines, but not more than this: an unclosed quote costs one row, not the file. */
const MAX_RECORD_LINES = 1000;

interface CsvRecord {
  record: string[];
  /** First and last (1-based) physical line of the record. */
  line: number;
  end: number;
}

/**
 * The data records after the header (0-based index `from` of `lines`), each with its lines. The
 * whole text is parsed at once when it is well-formed; otherwise record by record, so a record
 * with broken quoting is rejected with its line number (counted in `out`) and the rest proceeds.
 */
function csvRecords(lines: string[], from: number, out: ParsedManifest): CsvRecord[] {
  try {
    const parsed = parseCsv(lines.slice(from).join("\n"), {
      relax_column_count: true,
      skip_empty_lines: true,
      info: true,
      raw: true,
    }) as unknown as Array<{ record: string[]; info: { lines: number; raw?: string } }>;
    return parsed.map(({ record, info }) => {
      // info.lines is where the record ends; quoted fields may span several physical lines.
      const end = info.lines + from;
      const span = (info.raw?.replace(/\n$/, "").match(/\n/g) ?? []).length;
      return { record, line: end - span, end };
    });
  } catch {
    return csvRecordsOneByOne(lines, from, out);
  }
}

function csvRecordsOneByOne(lines: string[], from: number, out: ParsedManifest): CsvRecord[] {
  const records: CsvRecord[] = [];
  let i = from;
  while (i < lines.length) {
    if (lines[i].trim() === "") {
      i++;
      continue;
    }
    // A record ends at the first line end outside quotes; doubled quotes keep the count even.
    let end = i;
    let quotes = countQuotes(lines[i]);
    while (quotes % 2 === 1 && end + 1 < lines.length && end - i + 1 < MAX_RECORD_LINES) {
      quotes += countQuotes(lines[++end]);
    }
    if (quotes % 2 === 1) {
      out.total++;
      out.rejected.push({ line: i + 1, reason: "malformed CSV: a quote is never closed" });
      i++;
      continue;
    }
    try {
      const [record] = parseCsv(lines.slice(i, end + 1).join("\n"), {
        relax_column_count: true,
      }) as string[][];
      records.push({ record: record ?? [], line: i + 1, end: end + 1 });
      i = end + 1;
    } catch (err) {
      // A stray quote can make good lines look like the rest of its field: reject this line
      // alone and read on from the next one.
      out.total++;
      const reason = (err as Error).message.replace(/ at line \d+/, "");
      out.rejected.push({ line: i + 1, reason: `malformed CSV: ${reason}` });
      i++;
    }
  }
  return records;
}

function countQuotes(line: string): number {
  let n = 0;
  for (let p = line.indexOf('"'); p !== -1; p = line.indexOf('"', p + 1)) n++;
  return n;
}

function parseCsvManifest(bytes: Uint8Array): ParsedManifest {
  const { lines, badUtf8 } = decodeLines(bytes);
  const out: ParsedManifest = { rows: [], rejected: [], total: 0 };
  const firstContent = lines.findIndex((l) => l.trim() !== "");
  if (firstContent < 0) return out;
  const headerField = `line ${firstContent + 1}`;
  if (badUtf8.has(firstContent + 1)) {
    throw new ValidationError("CSV header is not valid UTF-8", { field: headerField });
  }
  let header: string[];
  try {
    header = (parseCsv(lines[firstContent], { trim: true }) as string[][])[0] ?? [];
  } catch (err) {
    throw new ValidationError(`CSV header is malformed: ${(err as Error).message}`, { field: headerField });
  }
  const repeated = header.filter((h, i) => header.indexOf(h) !== i);
  if (repeated.length > 0) {
    throw new ValidationError(`CSV header repeats column ${repeated.map((c) => `'${c}'`).join(", ")}`, {
      field: `line ${firstContent + 1}`,
    });
  }
  const unknown = header.filter((h) => !KNOWN_FIELDS.includes(h));
  if (unknown.length > 0) {
    throw new ValidationError(
      `CSV header has unknown column ${unknown.map((c) => `'${c}'`).join(", ")} (valid: ${KNOWN_FIELDS.join(", ")})`,
      { field: headerField },
    );
  }
  const records = csvRecords(lines, firstContent + 1, out);
  const candidates: Array<{ line: number; value: unknown }> = [];
  for (const { record, line, end } of records) {
    out.total++;
    let bad = false;
    for (let l = line; l <= end; l++) if (badUtf8.has(l)) bad = true;
    if (bad) {
      out.rejected.push({ line, reason: "line is not valid UTF-8" });
      continue;
    }
    if (record.length !== header.length) {
      out.rejected.push({ line, reason: `expected ${header.length} columns, found ${record.length}` });
      continue;
    }
    // CSV has no types and no absent values: empty cells mean "not set".
    const value: Record<string, string> = {};
    header.forEach((h, i) => {
      if (record[i] !== "") value[h] = record[i];
    });
    candidates.push({ line, value });
  }
  validateRows(candidates, out);
  return out;
}

export function parseManifest(bytes: Uint8Array, format: ManifestFormat): ParsedManifest {
  const parsed = format === "csv" ? parseCsvManifest(bytes) : parseJsonlManifest(bytes);
  parsed.rejected.sort((a, b) => a.line - b.line);
  return parsed;
}

export function manifestFormatOf(name: string): ManifestFormat {
  if (name.endsWith(".jsonl") || name.endsWith(".ndjson")) return "jsonl";
  if (name.endsWith(".csv")) return "csv";
  throw new ValidationError(`cannot tell the manifest format of ${name}: use .jsonl or .csv`, {
    field: "manifest",
  });
}
