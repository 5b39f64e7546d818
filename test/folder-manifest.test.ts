import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { folderRowPath, manifestFromFolder } from "../shared/datasets/folder-manifest.ts";
import { parseManifest } from "../shared/datasets/manifest.ts";
import { ValidationError } from "../shared/errors.ts";

let root: string;

/** Creates each path below `base` (a trailing `/` makes an empty folder). Content is irrelevant: nothing is decoded. */
async function tree(base: string, paths: string[]): Promise<string> {
  for (const p of paths) {
    const full = join(base, p);
    if (p.endsWith("/")) await mkdir(full, { recursive: true });
    else {
      await mkdir(dirname(full), { recursive: true });
      await writeFile(full, "x");
    }
  }
  return base;
}

async function fresh(name: string, paths: string[]): Promise<string> {
  return tree(join(root, name), paths);
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), "folder-manifest-"));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("manifestFromFolder", () => {
  test("the full convention: labels, test/val/validation splits, and everything it skips", async () => {
    const dir = await fresh("full", [
      "cats/a.jpg",
      "cats/B.JPEG",
      "cats/c.png",
      "cats/.DS_Store",
      "cats/._a.jpg",
      "cats/notes.txt",
      "cats/noext",
      "cats/sub/x.jpg",
      "dogs/d.webp",
      "dogs/e.GIF",
      "golden retriever/g.jpg",
      "café/h.png",
      "birds/",
      "readme.md",
      "top.jpg",
      ".git/config",
      "test/cats/t1.jpg",
      "test/dogs/t2.png",
      "test/loose.jpg",
      "test/.DS_Store",
      "val/dogs/v1.jpg",
      "validation/cats/v2.jpg",
    ]);
    const outside = await fresh("outside", ["linked/l1.jpg", "target.png"]);
    await symlink(join(outside, "linked"), join(dir, "linked"));
    await symlink(join(outside, "target.png"), join(dir, "dogs", "link.png"));
    await symlink(join(outside, "missing.png"), join(dir, "dogs", "broken.png"));

    const m = await manifestFromFolder(dir);
    assert.deepEqual(m.rows, [
      { image: "café/h.png", label: "café" },
      { image: "cats/B.JPEG", label: "cats" },
      { image: "cats/a.jpg", label: "cats" },
      { image: "cats/c.png", label: "cats" },
      { image: "dogs/d.webp", label: "dogs" },
      { image: "dogs/e.GIF", label: "dogs" },
      { image: "golden retriever/g.jpg", label: "golden retriever" },
      { image: "test/cats/t1.jpg", label: "cats", split: "test" },
      { image: "test/dogs/t2.png", label: "dogs", split: "test" },
      { image: "val/dogs/v1.jpg", label: "dogs", split: "test" },
      { image: "validation/cats/v2.jpg", label: "cats", split: "test" },
    ]);
    const reasons = Object.fromEntries(m.skipped.map((s) => [s.path, s.reason]));
    assert.deepEqual(
      m.skipped.map((s) => s.path),
      [
        ".git/",
        "birds/",
        "cats/.DS_Store",
        "cats/._a.jpg",
        "cats/noext",
        "cats/notes.txt",
        "cats/sub/",
        "dogs/broken.png",
        "dogs/link.png",
        "linked",
        "readme.md",
        "test/.DS_Store",
        "test/loose.jpg",
        "top.jpg",
      ],
    );
    assert.equal(reasons[".git/"], "hidden");
    assert.equal(reasons["cats/._a.jpg"], "hidden");
    assert.match(reasons["birds/"], /no image or audio files/);
    assert.match(
      reasons["cats/notes.txt"],
      /not an image or audio file name \(accepted: \.jpg, \.jpeg, \.png, \.webp, \.gif, \.wav, \.flac, \.mp3, \.ogg\)/,
    );
    assert.match(reasons["cats/noext"], /not an image or audio file name/);
    assert.match(reasons["cats/sub/"], /nested deeper than <label>\/<file>/);
    // Links are never followed, whether they point at a file, a folder or nothing.
    for (const link of ["dogs/broken.png", "dogs/link.png", "linked"])
      assert.match(reasons[link], /symbolic link: not followed/, link);
    assert.match(reasons["top.jpg"], /directly under the folder/);
    assert.match(reasons["readme.md"], /directly under the folder/);
    assert.match(reasons["test/loose.jpg"], /directly under test\//);
  });

  test("the rows are a valid manifest that round-trips through the parser", async () => {
    const dir = await fresh("roundtrip", ["a/1.jpg", "b/2.png", "test/a/3.jpg", "test/b/4.webp"]);
    const { rows } = await manifestFromFolder(dir);
    const jsonl = new TextEncoder().encode(rows.map((r) => JSON.stringify(r)).join("\n"));
    const parsed = await parseManifest(jsonl, "jsonl");
    assert.deepEqual(parsed.rejected, []);
    assert.deepEqual(
      parsed.rows.map((r) => [r.image, r.label, r.split]),
      rows.map((r) => [folderRowPath(r), r.label, r.split]),
    );
  });

  test("audio files (any case) become audio rows; Opus and other names are skipped, saying why", async () => {
    const dir = await fresh("audio", [
      "yes/1.wav",
      "yes/2.FLAC",
      "no/3.mp3",
      "no/4.Ogg",
      "no/5.opus",
      "no/6.m4a",
      "test/yes/7.wav",
      "silence/",
    ]);
    const m = await manifestFromFolder(dir);
    assert.deepEqual(m.rows, [
      { audio: "no/3.mp3", label: "no" },
      { audio: "no/4.Ogg", label: "no" },
      { audio: "test/yes/7.wav", label: "yes", split: "test" },
      { audio: "yes/1.wav", label: "yes" },
      { audio: "yes/2.FLAC", label: "yes" },
    ]);
    assert.deepEqual(
      m.skipped.map((s) => [s.path, s.reason.replace(/ \(accepted.*/, "")]),
      [
        ["no/5.opus", "not an image or audio file name"],
        ["no/6.m4a", "not an image or audio file name"],
        ["silence/", "no image or audio files in this label folder"],
      ],
    );
    const jsonl = new TextEncoder().encode(m.rows.map((r) => JSON.stringify(r)).join("\n"));
    const parsed = await parseManifest(jsonl, "jsonl");
    assert.deepEqual(parsed.rejected, []);
    assert.deepEqual(
      parsed.rows.map((r) => [r.audio, r.image, r.label]),
      m.rows.map((r) => [folderRowPath(r), undefined, r.label]),
    );
  });

  test("a folder of both images and audio gives rows of both, sorted by path", async () => {
    const dir = await fresh("mixed", ["a/1.png", "a/2.wav", "b/3.mp3", "b/4.jpg"]);
    const { rows } = await manifestFromFolder(dir);
    assert.deepEqual(rows, [
      { image: "a/1.png", label: "a" },
      { audio: "a/2.wav", label: "a" },
      { audio: "b/3.mp3", label: "b" },
      { image: "b/4.jpg", label: "b" },
    ]);
  });

  test("the same folder gives the same manifest", async () => {
    const dir = await fresh("stable", [
      "z/9.jpg",
      "a/2.jpg",
      "a/10.jpg",
      "M/1.jpg",
      "test/a/b.jpg",
      "test/a/A.jpg",
    ]);
    const first = await manifestFromFolder(dir);
    const second = await manifestFromFolder(dir);
    assert.deepEqual(first, second);
    // Code-unit order: upper case before lower case, "10" before "2", whatever the locale.
    assert.deepEqual(first.rows.map(folderRowPath), [
      "M/1.jpg",
      "a/10.jpg",
      "a/2.jpg",
      "test/a/A.jpg",
      "test/a/b.jpg",
      "z/9.jpg",
    ]);
  });

  test("splitFolders: false reads test/ as a label", async () => {
    const dir = await fresh("nosplit", ["test/t.jpg", "test/cats/x.jpg", "cats/c.jpg"]);
    const m = await manifestFromFolder(dir, { splitFolders: false });
    assert.deepEqual(m.rows, [
      { image: "cats/c.jpg", label: "cats" },
      { image: "test/t.jpg", label: "test" },
    ]);
    assert.deepEqual(
      m.skipped.map((s) => s.path),
      ["test/cats/"],
    );
  });

  test("a top-level train/ folder is skipped with a hint", async () => {
    const dir = await fresh("trainfolder", ["train/cats/a.jpg", "test/cats/b.jpg"]);
    const m = await manifestFromFolder(dir);
    assert.deepEqual(m.rows, [{ image: "test/cats/b.jpg", label: "cats", split: "test" }]);
    const train = m.skipped.find((s) => s.path === "train/cats/");
    assert.match(train?.reason ?? "", /train\/ folder is not read as a split/);
  });

  test("file names the store cannot hold are skipped", async () => {
    const dir = await fresh("storenames", ["cats/ok.jpg", "cats/a.~tmp.jpg", "cats/new\nline.jpg"]);
    const m = await manifestFromFolder(dir);
    assert.deepEqual(m.rows, [{ image: "cats/ok.jpg", label: "cats" }]);
    const reasons = Object.fromEntries(m.skipped.map((s) => [s.path, s.reason]));
    assert.match(reasons["cats/a.~tmp.jpg"], /cannot be stored/);
    assert.match(reasons["cats/new\nline.jpg"], /control characters/);
  });

  test("bad label folders fail the call, naming every one", async () => {
    const dir = await fresh("badlabels", [
      "ok/a.jpg",
      "bad\u0007bell/b.jpg",
      "test/tab\there/c.jpg",
      "__proto__/d.jpg",
    ]);
    await assert.rejects(manifestFromFolder(dir), (err: unknown) => {
      assert.ok(err instanceof ValidationError);
      assert.match(err.message, /^3 label folders have names that cannot be a label/);
      assert.match(err.message, /"bad\\u0007bell\/" \(the name contains control characters\)/);
      assert.match(err.message, /"test\/tab\\there\/" \(the name contains control characters\)/);
      assert.match(err.message, /"__proto__\/" \(label must not be __proto__\)/);
      assert.equal(err.field, "__proto__/");
      assert.equal((err.details as { folders: unknown[] }).folders.length, 3);
      return true;
    });
    const slash = await fresh("backslash", ["a\\b/x.jpg", "ok/y.jpg"]);
    await assert.rejects(manifestFromFolder(slash), /"a\\\\b\/" \(the name contains '\\' or '\.~'/);
  });

  test("a missing folder or a file is a ValidationError on dir", async () => {
    await assert.rejects(manifestFromFolder(join(root, "does-not-exist")), (err: unknown) => {
      assert.ok(err instanceof ValidationError);
      assert.equal(err.field, "dir");
      assert.match(err.message, /does not exist/);
      return true;
    });
    const file = join(root, "plain-file.jpg");
    await writeFile(file, "x");
    await assert.rejects(manifestFromFolder(file), (err: unknown) => {
      assert.ok(err instanceof ValidationError);
      assert.match(err.message, /is not a folder/);
      return true;
    });
  });

  test("an empty folder gives no rows and nothing skipped", async () => {
    const dir = await fresh("empty", ["./"]);
    assert.deepEqual(await manifestFromFolder(dir), { rows: [], skipped: [] });
  });
});
