import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { namesCommand } from "../functions/cli/context.ts";
import { cli } from "./helpers/cli.ts";

const { version } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));

test("headstart --version and -V print package.json's version and exit 0", async () => {
  for (const flag of ["--version", "-V"]) {
    const r = await cli([flag]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), version);
  }
});

test("a command's own --version <v> names a head version; the program's flag does not swallow it", async () => {
  const store = mkdtempSync(join(tmpdir(), "headstart-version-"));
  for (const args of [
    ["predict", "nohead", "--version", "v1", "--text", "hi"],
    ["batch-predict", "nohead", "--dataset", "d", "--version", "v1"],
  ]) {
    const r = await cli(["--store", store, ...args]);
    assert.equal(r.code, 2, r.stderr);
    assert.notEqual(r.stdout.trim(), version);
    assert.match(r.stderr, /head nohead version v1 not found \[version\]/);
  }
});

test("namesCommand: the program keeps -V/--version unless a command is named", () => {
  assert.equal(namesCommand(["--version"]), false);
  assert.equal(namesCommand(["--store", "predict", "-V"]), false);
  assert.equal(namesCommand(["help"]), false);
  assert.equal(namesCommand(["--json", "predict", "h", "--version", "v1"]), true);
  assert.equal(namesCommand(["--log-level", "debug", "batch-predict", "h"]), true);
});
