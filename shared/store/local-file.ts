/** Local copies of stored objects, with the sha256 of their bytes (backbone files are verified). */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";

export interface LocalFile {
  path: string;
  /** sha256 of the file's bytes, hex. */
  sha256: string;
}

export async function fileSha256(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest("hex");
}
