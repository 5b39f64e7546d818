/**
 * A labelled folder → manifest rows, for the most common way image and audio datasets are shared:
 *
 *     <dir>/<label>/<file>            → { image: "<label>/<file>", label: "<label>" }
 *     <dir>/test/<label>/<file>       → { image: "test/<label>/<file>", label: "<label>", split: "test" }
 *
 * A file's extension (any case) gives its row's input field: IMAGE_EXTENSIONS → `image`,
 * AUDIO_EXTENSIONS → `audio` (`{ audio: "yes/1.wav", label: "yes" }`). A folder holding both gives
 * rows of both, as a manifest may: such a dataset has no single default backbone, so embedding it
 * asks for one by name (`backbone/defaults.ts`), and each backbone embeds the rows of its modality.
 *
 * `val/` and `validation/` are read like `test/` (the manifest has only train and test splits;
 * rows without `split` are training rows). `splitFolders: false` reads those names as labels.
 * `image` (or `audio`) is the file's path below `dir` with `/` separators, which is also the key the
 * file must be uploaded under (`datasets/<name>/files/<path>`); rows are sorted by it (code-unit
 * order, independent of locale) so the same folder always gives the same manifest.
 *
 * Files the convention cannot place are returned in `skipped` with a reason, never silently
 * dropped: files directly under `dir` (or directly under `test/`), folders nested deeper than
 * `<label>/<file>`, hidden entries (`.DS_Store`, `._*`, `.git/`), files without an image or audio
 * extension, names the store cannot hold, symbolic links (never
 * followed), empty label folders. Label folder names are the labels as-is; one that cannot be a label (control
 * characters, too long, not UTF-8) fails the whole call with a ValidationError naming every
 * such folder, since silently dropping a class would skew everything trained on the rest.
 *
 * Symbolic links are followed one level (a linked label folder or file counts as what it points
 * to); the walk never goes deeper than the convention, so link cycles cannot loop it.
 */
import { type Dirent, promises as fs } from "node:fs";
import { join } from "node:path";
import { ValidationError } from "../errors.ts";
import { assertRelativeFilePath } from "../layout.ts";
import { LabelName } from "./manifest.ts";

export const IMAGE_EXTENSIONS = [".jpg", ".jpeg", ".png", ".webp", ".gif"] as const;
/** The audio formats the decoder reads (`audio/decode.ts` AUDIO_FORMATS), as file extensions. */
export const AUDIO_EXTENSIONS = [".wav", ".flac", ".mp3", ".ogg"] as const;
const MEDIA_EXTENSIONS: readonly string[] = [...IMAGE_EXTENSIONS, ...AUDIO_EXTENSIONS];
export const TEST_SPLIT_FOLDERS = ["test", "val", "validation"] as const;

/** Path below the folder, `/`-separated: the manifest's `image` or `audio` field and the file's upload key. */
export type FolderRow = ({ image: string } | { audio: string }) & { label: string; split?: "test" };

/** The file a folder row names (its `image` or `audio`). */
export function folderRowPath(row: FolderRow): string {
  return "image" in row ? row.image : row.audio;
}

export interface SkippedEntry {
  /** Path below the folder, `/`-separated; folders end with `/`. */
  path: string;
  reason: string;
}

export interface FolderManifest {
  rows: FolderRow[];
  skipped: SkippedEntry[];
}

export interface FolderManifestOptions {
  /** Read top-level `test/`, `val/`, `validation/` as the test split (default true). */
  splitFolders?: boolean;
}

type Kind = "file" | "dir" | "link" | "other";

/**
 * Symbolic links are never followed: one can point anywhere on the machine (`/etc/passwd`
 * renamed `x.jpg`, a folder outside the dataset), and an upload must hold only what is inside
 * the folder the user named.
 */
function kindOf(entry: Dirent): Kind {
  if (entry.isSymbolicLink()) return "link";
  if (entry.isFile()) return "file";
  if (entry.isDirectory()) return "dir";
  return "other";
}

const LINK_REASON = "symbolic link: not followed (it may point outside the folder)";

async function list(dir: string): Promise<Array<{ name: string; kind: Kind }>> {
  const entries = await fs.readdir(dir, { withFileTypes: true });
  const out = entries.map((e) => ({ name: e.name, kind: kindOf(e) }));
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

// macOS litters `.DS_Store` and AppleDouble `._name` files; editors and VCS leave dot-folders.
const isHidden = (name: string) => name.startsWith(".");
// readdir turns bytes that are not UTF-8 into U+FFFD, a name that no longer opens the file.
const notUtf8 = (name: string) => name.includes("\uFFFD");
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

function extensionOf(name: string): string {
  const dot = name.lastIndexOf(".");
  return dot <= 0 ? "" : name.slice(dot).toLowerCase();
}

/** Why `name` cannot be a label, or undefined when it can. */
function labelProblem(name: string): string | undefined {
  if (notUtf8(name)) return "the name is not valid UTF-8";
  if (CONTROL.test(name)) return "the name contains control characters";
  // Every file below it would fail the store's path rule, losing the whole class.
  if (name.includes("\\") || name.includes(".~"))
    return "the name contains '\\' or '.~', which file paths cannot";
  const parsed = LabelName.safeParse(name);
  return parsed.success ? undefined : parsed.error.issues[0].message;
}

/** Why `key` cannot be a stored file path, or undefined when it can. */
function keyProblem(key: string, name: string): string | undefined {
  if (notUtf8(name)) return "the file name is not valid UTF-8";
  if (CONTROL.test(name)) return "the file name contains control characters";
  try {
    assertRelativeFilePath(key);
    return undefined;
  } catch {
    return "the path cannot be stored (it contains '\\' or '.~', or is longer than 1024 characters)";
  }
}

export async function manifestFromFolder(
  dir: string,
  opts: FolderManifestOptions = {},
): Promise<FolderManifest> {
  const splitFolders = opts.splitFolders ?? true;
  const top = await listFolder(dir);
  const walk: Walk = { dir, rows: [], skipped: [], badLabels: [] };
  for (const entry of top) {
    if (isHidden(entry.name)) {
      skip(walk, entry.kind === "dir" ? `${entry.name}/` : entry.name, "hidden");
    } else if (entry.kind === "link") {
      skip(walk, entry.name, LINK_REASON);
    } else if (entry.kind !== "dir") {
      skip(walk, entry.name, "directly under the folder: files go in a <label>/ folder");
    } else if (splitFolders && (TEST_SPLIT_FOLDERS as readonly string[]).includes(entry.name)) {
      await readTestFolder(walk, entry.name);
    } else {
      await readLabel(walk, "", entry.name, undefined);
    }
  }
  throwOnBadLabels(walk.badLabels);
  const byPath = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  walk.rows.sort((a, b) => byPath(folderRowPath(a), folderRowPath(b)));
  walk.skipped.sort((a, b) => byPath(a.path, b.path));
  return { rows: walk.rows, skipped: walk.skipped };
}

/** What the walk has found so far. */
interface Walk {
  dir: string;
  rows: FolderRow[];
  skipped: SkippedEntry[];
  badLabels: Array<{ folder: string; problem: string }>;
}

function skip(walk: Walk, path: string, reason: string): void {
  walk.skipped.push({ path, reason });
}

/** The folder's entries; a folder that cannot be read is the caller's `dir`. */
async function listFolder(dir: string): Promise<Awaited<ReturnType<typeof list>>> {
  try {
    return await list(dir);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw new ValidationError(
      code === "ENOENT"
        ? `folder ${dir} does not exist`
        : code === "ENOTDIR"
          ? `${dir} is not a folder`
          : `cannot read folder ${dir}: ${(cause as Error).message}`,
      { field: "dir", cause },
    );
  }
}

/** `test/` (or `val/`, `validation/`): label folders of test rows. */
async function readTestFolder(walk: Walk, name: string): Promise<void> {
  const prefix = `${name}/`;
  for (const sub of await list(join(walk.dir, name))) {
    if (isHidden(sub.name)) skip(walk, `${prefix}${sub.name}${sub.kind === "dir" ? "/" : ""}`, "hidden");
    else if (sub.kind === "link") skip(walk, `${prefix}${sub.name}`, LINK_REASON);
    else if (sub.kind === "dir") await readLabel(walk, prefix, sub.name, "test");
    else
      skip(
        walk,
        `${prefix}${sub.name}`,
        `directly under ${prefix}: test files go in a ${prefix}<label>/ folder`,
      );
  }
}

/** `<prefix><label>/` holding image and audio files. */
async function readLabel(
  walk: Walk,
  prefix: string,
  label: string,
  split: "test" | undefined,
): Promise<void> {
  const folder = `${prefix}${label}/`;
  const problem = labelProblem(label);
  if (problem !== undefined) {
    walk.badLabels.push({ folder, problem });
    return;
  }
  let found = 0;
  for (const entry of await list(join(walk.dir, prefix, label))) {
    const path = `${folder}${entry.name}`;
    const skipped = entryProblem(entry, path, prefix, label);
    if (skipped !== undefined) {
      skip(walk, skipped.path, skipped.reason);
      continue;
    }
    const input = (AUDIO_EXTENSIONS as readonly string[]).includes(extensionOf(entry.name))
      ? { audio: path }
      : { image: path };
    walk.rows.push(split === undefined ? { ...input, label } : { ...input, label, split });
    found++;
  }
  if (found === 0) skip(walk, folder, "no image or audio files in this label folder");
}

/** Why an entry of a label folder is no row (and the path to report), or undefined. */
function entryProblem(
  entry: { name: string; kind: Kind },
  path: string,
  prefix: string,
  label: string,
): SkippedEntry | undefined {
  if (isHidden(entry.name)) return { path: entry.kind === "dir" ? `${path}/` : path, reason: "hidden" };
  if (entry.kind === "dir") {
    return {
      path: `${path}/`,
      reason:
        `folder nested deeper than ${prefix}<label>/<file>` +
        (prefix === "" && label === "train"
          ? " (a top-level train/ folder is not read as a split: move its <label>/ folders up)"
          : ""),
    };
  }
  if (entry.kind === "link") return { path, reason: LINK_REASON };
  if (entry.kind === "other") return { path, reason: "not a regular file" };
  if (!MEDIA_EXTENSIONS.includes(extensionOf(entry.name))) {
    return { path, reason: `not an image or audio file name (accepted: ${MEDIA_EXTENSIONS.join(", ")})` };
  }
  const bad = keyProblem(path, entry.name);
  return bad === undefined ? undefined : { path, reason: bad };
}

/** Label folders whose names cannot be labels fail the whole call, naming every one. */
function throwOnBadLabels(badLabels: Walk["badLabels"]): void {
  if (badLabels.length === 0) return;
  throw new ValidationError(
    `${badLabels.length} label folder${badLabels.length > 1 ? "s have names" : " has a name"} that cannot be a label: ${badLabels
      .slice(0, 10)
      .map((b) => `${JSON.stringify(b.folder)} (${b.problem})`)
      .join(", ")}${badLabels.length > 10 ? ", …" : ""}`,
    { field: badLabels[0].folder, details: { folders: badLabels } },
  );
}
