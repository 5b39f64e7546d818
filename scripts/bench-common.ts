/** What every benchmark script prints the same way: the machine, and the IMDB sentences it times. */
import { execFile } from "node:child_process";
import { cpus, totalmem } from "node:os";
import { promisify } from "node:util";
import { env as ortEnv } from "onnxruntime-node";
import { normalizeText } from "../shared/cache/address.ts";
import { loadImdb } from "../shared/samples/imdb.ts";

export async function machine() {
  const lscpu = await promisify(execFile)("lscpu").then(
    (r) => r.stdout,
    () => "",
  );
  const model = /Model name:\s*(.+)/.exec(lscpu)?.[1] ?? cpus()[0]?.model ?? "unknown";
  return {
    cpu: model.trim(),
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    onnxruntime: ortEnv.versions?.node ?? "?",
  };
}

/** The first `count` sentences of IMDB reviews (split after . ! ?), normalized as the cache does. */
export async function imdbSentences(count: number): Promise<string[]> {
  const out: string[] = [];
  for (const r of await loadImdb(2500)) {
    for (const s of r.text.replace(/<br\s*\/?>/g, " ").split(/(?<=[.!?])\s+/)) {
      const t = normalizeText(s);
      if (t.length > 0) out.push(t);
    }
    if (out.length >= count) break;
  }
  return out.slice(0, count);
}
