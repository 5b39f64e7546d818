/**
 * Deployed Lambdas never build backbones (HEADSTART_BUILD_BACKBONES=false): a built-in missing
 * from the store is a clear error naming the publish command, and `headstart backbone publish`
 * puts it there.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, test } from "node:test";
import { loadConfig } from "../shared/config.ts";
import { NotFoundError } from "../shared/errors.ts";
import { keys } from "../shared/layout.ts";
import { Platform } from "../shared/platform.ts";
import { FsStore } from "../shared/store/fs.ts";
import { cli } from "./helpers/cli.ts";
import { tempDir } from "./helpers/platform.ts";

const dir = await tempDir();
after(() => import("node:fs/promises").then((fs) => fs.rm(dir, { recursive: true, force: true })));
const store = new FsStore(join(dir, "store"));
const modelsDir = loadConfig().modelsDir; // shared with the other tests: GloVe converts once

test("HEADSTART_BUILD_BACKBONES=false: a missing built-in names the publish command; publish fixes it", async () => {
  const lambdaConfig = loadConfig({ HEADSTART_BUILD_BACKBONES: "false" }, { store: store.root, modelsDir });
  assert.equal(lambdaConfig.buildBackbones, false);
  const lambda = new Platform(store, lambdaConfig);
  await assert.rejects(lambda.backbone("glove-100d"), (err: Error) => {
    assert.ok(err instanceof NotFoundError);
    assert.match(err.message, /not published.*headstart backbone publish glove-100d --store /);
    assert.ok(!err.message.includes(store.root), "no internal path: the message may reach an API caller");
    return true;
  });
  assert.equal(await store.get(keys.backboneSpec("glove-100d")), undefined, "nothing was built or stored");

  const r = await cli(["backbone", "publish", "glove-100d", "--json"], {
    HEADSTART_STORE: store.root,
    HEADSTART_MODELS_DIR: modelsDir,
  });
  assert.equal(r.code, 0, r.stderr);
  const [published] = JSON.parse(r.stdout);
  assert.equal(published.id, "glove-100d");
  const spec = await lambda.backbone("glove-100d");
  assert.equal(spec.sha256, published.sha256);
});

test("backbone publish refuses an unknown built-in by name", async () => {
  const r = await cli(["backbone", "publish", "no-such-model"], { HEADSTART_STORE: store.root });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /built-in backbone no-such-model \(built-in: glove-100d/);
});

test("HEADSTART_BUILD_BACKBONES accepts only true or false, naming the variable", () => {
  assert.throws(() => loadConfig({ HEADSTART_BUILD_BACKBONES: "yes" }), /HEADSTART_BUILD_BACKBONES/);
});
