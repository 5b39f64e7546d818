import type { z } from "zod";
import { HeadstartError } from "../errors.ts";
import type { ObjectInfo, ObjectStore, PutOptions } from "./types.ts";

const decoder = new TextDecoder("utf-8", { fatal: true });

export function decodeUtf8(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/** Reads and validates a JSON object the platform wrote; a malformed one is an internal error. */
export async function getJson<T>(
  store: ObjectStore,
  key: string,
  schema: z.ZodType<T>,
): Promise<{ value: T; etag: string } | undefined> {
  const obj = await store.get(key);
  if (!obj) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(decodeUtf8(obj.body));
  } catch (cause) {
    throw new HeadstartError("internal", `stored object ${key} is not valid JSON`, { cause });
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    throw new HeadstartError(
      "internal",
      `stored object ${key} does not match its schema: ${parsed.error.message}`,
    );
  }
  return { value: parsed.data, etag: obj.etag };
}

export function putJson(
  store: ObjectStore,
  key: string,
  value: unknown,
  opts: PutOptions = {},
): Promise<ObjectInfo> {
  return store.put(key, `${JSON.stringify(value, null, 2)}\n`, { contentType: "application/json", ...opts });
}

export function toJsonl(rows: readonly unknown[]): string {
  let out = "";
  for (const r of rows) out += `${JSON.stringify(r)}\n`;
  return out;
}

export function parseJsonl<T>(text: string, schema: z.ZodType<T>, what: string): T[] {
  const out: T[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (!line) continue;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch (cause) {
      throw new HeadstartError("internal", `${what} line ${i + 1} is not valid JSON`, { cause });
    }
    const parsed = schema.safeParse(raw);
    if (!parsed.success) {
      throw new HeadstartError(
        "internal",
        `${what} line ${i + 1} does not match its schema: ${parsed.error.message}`,
      );
    }
    out.push(parsed.data);
  }
  return out;
}
