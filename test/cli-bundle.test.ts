/**
 * The CLI's prebuilt bundle (bin/cli-bundle.js, scripts/build-cli.ts): built from the sources it
 * stamps, run only while every stamp still holds, and the same CLI as the sources (its modules keep
 * their own `import.meta.url`). The other CLI tests spawn bin/headstart.js, so they run whichever
 * of the two is current; these pin down the choice between them.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { freshCliBundle, PACKAGE_ROOT, stamp } from "../bin/cli-bundle.js";
import { buildCliBundle } from "../scripts/build-cli.ts";
import { VERSION } from "../shared/version.ts";

const run = promisify(execFile);
const BIN = join(PACKAGE_ROOT, "bin", "headstart.js");

describe("the CLI bundle", () => {
  let dir: string;
  let built: Awaited<ReturnType<typeof buildCliBundle>>;
  const manifest = async () => JSON.parse(await readFile(join(dir, "manifest.json"), "utf8"));

  before(async () => {
    // Inside the package: the bundle resolves the packages it leaves out from node_modules.
    await mkdir(join(PACKAGE_ROOT, ".build"), { recursive: true });
    dir = await mkdtemp(join(PACKAGE_ROOT, ".build", "cli-test-"));
    built = await buildCliBundle(dir);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test("is current and fresh right after its build, and stamps what it was built from", async () => {
    assert.equal(built.current, true);
    const url = freshCliBundle("headstart", dir);
    assert.equal(url, pathToFileURL(join(dir, built.build, "headstart.mjs")).href);
    const { inputs } = await manifest();
    for (const rel of [
      "functions/cli/main.ts",
      "shared/version.ts",
      "shared/config.ts",
      "scripts/build-cli.ts",
      "node_modules/.package-lock.json",
    ]) {
      assert.equal(inputs[rel], stamp(join(PACKAGE_ROOT, rel)), rel);
    }
    assert.ok(
      !Object.keys(inputs).some(
        (p) => p.startsWith("node_modules/") && p !== "node_modules/.package-lock.json",
      ),
    );
  });

  test("runs as the CLI", async () => {
    const file = fileURLToPath(freshCliBundle("headstart", dir)!);
    const { stdout } = await run(process.execPath, [file, "--version"]);
    assert.equal(stdout.trim(), VERSION);
  });

  test("keeps each source's own import.meta.url (paths stay those of the source tree)", async () => {
    const code = await readFile(join(dir, built.build, "headstart.mjs"), "utf8");
    assert.ok(code.includes(JSON.stringify(pathToFileURL(join(PACKAGE_ROOT, "shared", "config.ts")).href)));
    // Only the banner's require/__filename/__dirname shims read the bundle's own URL.
    assert.equal(code.split("import.meta.url").length - 1, 3);
  });

  test("is stale once any input's stamp differs, and when there is no usable manifest", async () => {
    const good = await manifest();
    const edited = { ...good, inputs: { ...good.inputs, "shared/version.ts": "1:2" } };
    await writeFile(join(dir, "manifest.json"), JSON.stringify(edited));
    assert.equal(freshCliBundle("headstart", dir), undefined);
    const gone = { ...good, inputs: { ...good.inputs, "shared/no-such-file.ts": "1:2" } };
    await writeFile(join(dir, "manifest.json"), JSON.stringify(gone));
    assert.equal(freshCliBundle("headstart", dir), undefined);
    await writeFile(join(dir, "manifest.json"), JSON.stringify({ ...good, version: 0 }));
    assert.equal(freshCliBundle("headstart", dir), undefined);
    await writeFile(join(dir, "manifest.json"), "{not json");
    assert.equal(freshCliBundle("headstart", dir), undefined);
    await writeFile(join(dir, "manifest.json"), JSON.stringify(good));
    assert.equal(freshCliBundle("no-such-entry", dir), undefined);
    assert.ok(freshCliBundle("headstart", dir));
  });

  test("HEADSTART_CLI_SOURCES=1 runs the TypeScript sources through tsx", async () => {
    const { stdout } = await run(process.execPath, [BIN, "--version"], {
      env: { ...process.env, HEADSTART_CLI_SOURCES: "1" },
    });
    assert.equal(stdout.trim(), VERSION);
  });
});
