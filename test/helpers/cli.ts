/** The real CLI in a child process, as users run it: exit code, stdout and stderr. */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { PACKAGE_ROOT } from "../../shared/config.ts";
import { tempDir } from "./platform.ts";
import { tinySentimentRows, toJsonlText, writeTinyBackbone } from "./tiny-backbone.ts";

const run = promisify(execFile);
export const CLI_BIN = join(PACKAGE_ROOT, "bin", "headstart.js");

export async function cli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI_BIN, ...args], {
      env: { ...process.env, HEADSTART_LOG_LEVEL: "warn", ...env },
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/**
 * A fresh store for CLI tests in a temporary folder: the tiny text backbone added (and the default),
 * `films` (`rows` tiny reviews drawn with `seed`) ingested, then `steps` run in order; `files` are
 * written into the folder first, for steps that name them.
 */
export async function filmsStore(opts: {
  rows: number;
  seed: number;
  files?: Record<string, string>;
  steps?: string[][];
}): Promise<{ dir: string; env: NodeJS.ProcessEnv }> {
  const dir = await tempDir();
  await writeTinyBackbone(join(dir, "backbone"));
  await writeFile(join(dir, "films.jsonl"), toJsonlText(tinySentimentRows(opts.rows, { seed: opts.seed })));
  for (const [name, text] of Object.entries(opts.files ?? {})) await writeFile(join(dir, name), text);
  const env = { HEADSTART_STORE: join(dir, "store"), HEADSTART_DEFAULT_BACKBONE: "tiny-text" };
  for (const args of [
    ["backbone", "add", join(dir, "backbone")],
    ["ingest", join(dir, "films.jsonl"), "--dataset", "films"],
    ...(opts.steps ?? []),
  ]) {
    const r = await cli(
      args.map((a) => a.replace("{dir}", dir)),
      env,
    );
    assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
  }
  return { dir, env };
}
