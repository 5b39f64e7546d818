import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../shared/config.ts";
import { Platform, type PlatformOptions } from "../../shared/platform.ts";
import { FsStore } from "../../shared/store/fs.ts";
import { writeTinyBackbone } from "./tiny-backbone.ts";

export async function tempDir(prefix = "headstart-test-"): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** A platform on a fresh filesystem store with the tiny backbone published as the default. */
export async function tinyPlatform(opts: PlatformOptions = {}) {
  const dir = await tempDir();
  const store = new FsStore(join(dir, "store"));
  const config = loadConfig(
    {},
    { store: store.root, defaultBackbone: "tiny-text", modelsDir: join(dir, "models") },
  );
  const platform = new Platform(store, config, opts);
  await writeTinyBackbone(join(dir, "backbone"));
  await platform.addBackbone(join(dir, "backbone"));
  return { dir, store, config, platform, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** `tinyPlatform` with the environment a `headstart` child process needs to reach the same store. */
export async function tinyCliPlatform(opts: PlatformOptions = {}) {
  const ctx = await tinyPlatform(opts);
  return { ...ctx, env: { HEADSTART_STORE: ctx.store.root } };
}
