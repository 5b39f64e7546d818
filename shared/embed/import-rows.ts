/**
 * The rows of an import (ids, labels, splits, texts): JSONL read one line at a time, or a JSON
 * array, each row checked on its own so every problem names its line.
 */
import { z } from "zod";
import {
  type DatasetRow,
  describeRowIssue,
  Label,
  MAX_ID_CHARS,
  MAX_TEXT_CHARS,
} from "../datasets/manifest.ts";
import { ValidationError } from "../errors.ts";
import { CHUNK_BYTES, openInputFile } from "./import-matrix.ts";

const ROW_FIELDS = ["id", "label", "split", "text"];

export const ImportRow = z.strictObject({
  id: z.union([z.string().min(1).max(MAX_ID_CHARS), z.number().int()]),
  label: Label.optional(),
  split: z.enum(["train", "test"]).optional(),
  /** Kept in the dataset's rows for people reading them; never embedded. */
  text: z.string().max(MAX_TEXT_CHARS, `text is longer than ${MAX_TEXT_CHARS} characters`).optional(),
});
export type ImportRow = z.infer<typeof ImportRow>;

export interface RowEntry {
  /** 1-based line (JSONL) or index + 1 (JSON array): the DatasetRow's `line`. */
  line: number;
  /** `rows.jsonl line 7` or `rows[6]`, for messages. */
  where: string;
  field: string;
  value?: unknown;
  error?: string;
}

export interface RowProblem {
  line: number;
  id?: string;
  field: string;
  reason: string;
}

const fatalUtf8 = new TextDecoder("utf-8", { fatal: true });

/** One line of a JSONL file (without its newline), decoded on its own so a bad byte names its line. */
function jsonlEntry(chunk: Uint8Array, line: number, what: string): RowEntry | undefined {
  let end = chunk.length;
  if (end > 0 && chunk[end - 1] === 0x0d) end--;
  const entry: RowEntry = { line, where: `${what} line ${line}`, field: `line ${line}` };
  let text: string;
  try {
    text = fatalUtf8.decode(chunk.subarray(0, end));
  } catch {
    return { ...entry, error: "line is not valid UTF-8" };
  }
  if (text.trim() === "") return undefined;
  try {
    entry.value = JSON.parse(text);
  } catch (err) {
    entry.error = `not valid JSON: ${(err as Error).message}`;
  }
  return entry;
}

/** Lines of JSONL bytes arriving in pieces: one line at a time is held, never the file. */
async function* jsonlEntries(pieces: AsyncIterable<Uint8Array>, what: string): AsyncGenerator<RowEntry> {
  let carry: Uint8Array = new Uint8Array(0);
  let line = 0;
  let first = true;
  const emit = (bytes: Uint8Array) => jsonlEntry(bytes, ++line, what);
  for await (let piece of pieces) {
    if (first && piece.length > 0) {
      first = false;
      if (piece[0] === 0xef && piece[1] === 0xbb && piece[2] === 0xbf) piece = piece.subarray(3);
    }
    let from = 0;
    for (let i = piece.indexOf(0x0a); i !== -1; i = piece.indexOf(0x0a, from)) {
      const part = piece.subarray(from, i);
      const e = emit(carry.length ? concatBytes(carry, part) : part);
      carry = new Uint8Array(0);
      if (e) yield e;
      from = i + 1;
    }
    carry = concatBytes(carry, piece.subarray(from));
  }
  const e = emit(carry);
  if (e) yield e;
}

function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b.slice();
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

async function* filePieces(path: string): AsyncGenerator<Uint8Array> {
  const fh = await openInputFile(path, "rows");
  try {
    const buf = new Uint8Array(CHUNK_BYTES);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) return;
      yield buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}

export type ValidRow = ImportRow & { id: string; line: number };

/** One row checked on its own: the row, or the problem that rejects it. */
export function validateRow(e: RowEntry): { row: ValidRow } | { problem: RowProblem } {
  const fail = (reason: string, sub?: string, id?: string) => ({
    problem: {
      line: e.line,
      id,
      field: sub ? `${e.field}.${sub}` : e.field,
      reason: `${e.where}: ${reason}`,
    },
  });
  if (e.error !== undefined) return fail(e.error);
  const v = e.value;
  if (typeof v !== "object" || v === null || Array.isArray(v)) return fail("each row must be a JSON object");
  if ((v as { id?: unknown }).id === undefined) {
    return fail("id is required (rows are matched to vectors by position and named by id)", "id");
  }
  const parsed = ImportRow.safeParse(v);
  if (!parsed.success) {
    const { field, reason } = describeRowIssue(parsed.error, ROW_FIELDS);
    const rawId = (v as { id?: unknown }).id;
    return fail(
      reason,
      field,
      typeof rawId === "string" || typeof rawId === "number" ? String(rawId) : undefined,
    );
  }
  return { row: { ...parsed.data, id: String(parsed.data.id), line: e.line } };
}

/** The rows of an import, readable more than once (a validating pass, then a writing pass). */
export interface RowSource {
  name: string;
  entries(): AsyncIterable<RowEntry>;
}

/** Rows in a local JSONL file. */
export function fileRows(path: string): RowSource {
  return { name: path, entries: () => jsonlEntries(filePieces(path), path) };
}

/** Rows as JSONL bytes (or text). */
export function jsonlRows(rows: Uint8Array | string): RowSource {
  const bytes = typeof rows === "string" ? new TextEncoder().encode(rows) : rows;
  return {
    name: "rows.jsonl",
    entries: () =>
      jsonlEntries(
        (async function* () {
          yield bytes;
        })(),
        "rows.jsonl",
      ),
  };
}

/** Rows as a JSON array of objects. */
export function arrayRows(list: readonly unknown[]): RowSource {
  if (!Array.isArray(list)) throw new ValidationError("rows must be an array of objects", { field: "rows" });
  return {
    name: "rows",
    async *entries() {
      for (let i = 0; i < list.length; i++) {
        yield { line: i + 1, where: `rows[${i}]`, field: `rows[${i}]`, value: list[i] };
      }
    },
  };
}

export function datasetRow(row: ValidRow, sha: string): DatasetRow {
  return {
    id: row.id,
    line: row.line,
    ...(row.text === undefined ? {} : { text: row.text }),
    vector: sha,
    ...(row.label === undefined ? {} : { label: row.label }),
    ...(row.split === undefined ? {} : { split: row.split }),
  };
}
