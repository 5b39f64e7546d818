/**
 * The API's schemas do not depend on import order. zod 4 gives a schema `.openapi()` only when it
 * is built after @hono/zod-openapi loaded; the API extends schemas of shared/ (the train request,
 * API keys, stored documents), and an entry point that loads those modules first (the CLI, a
 * bundle whose chunks come in another order) once crashed at start with
 * "….openapi is not a function". This loads them first, in a fresh process, then the whole app.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

test("the API app and its OpenAPI document build after shared/'s schemas were built first", () => {
  const script = `
    await import("./shared/heads/train-request.ts");
    await import("./shared/auth/api-keys.ts");
    await import("./shared/heads/version.ts");
    await import("./shared/datasets/status.ts");
    await import("./shared/embed/job.ts");
    await import("./shared/backbone/spec.ts");
    const { createApp } = await import("./shared/api/app.ts");
    const { Platform } = await import("./shared/platform.ts");
    const { FsStore } = await import("./shared/store/fs.ts");
    const { loadConfig } = await import("./shared/config.ts");
    const { makeLogger } = await import("./shared/log.ts");
    const { mkdtempSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const dir = mkdtempSync(tmpdir() + "/headstart-order-");
    const app = createApp(
      new Platform(new FsStore(dir), loadConfig({ HEADSTART_STORE: dir })),
      makeLogger("test", "silent"),
    );
    const res = await app.request("/openapi.json");
    const doc = await res.json();
    console.log(res.status, Object.keys(doc.paths).length, JSON.stringify(doc.components.schemas.TrainRequest.properties.type.description));
  `;
  const out = execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    cwd: ROOT,
    encoding: "utf8",
  });
  const [status, paths, ...description] = (out.trim().split("\n").at(-1) ?? "").split(" ");
  const typeDescription = description.join(" ");
  assert.equal(status, "200");
  assert.ok(Number(paths) > 10, `only ${paths} paths in the document`);
  assert.match(typeDescription, /head type/);
});
