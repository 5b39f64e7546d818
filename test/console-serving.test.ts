/**
 * The web console's server side, without a browser: the build (hashed assets, an index that names
 * them, rebuilt only when a source is newer), what the app serves at `/` and `/console/assets/`
 * (CSP, cache headers, nothing but the build's own files), and `GET /v1/me`, which tells the
 * console whether to ask for a key and which pages the key's scopes can use.
 */
import assert from "node:assert/strict";
import { readdir, readFile, utimes } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createApp } from "../shared/api/app.ts";
import { CONSOLE_CSP } from "../shared/api/console.ts";
import { buildConsole, consoleBuildIsCurrent, ensureConsoleBuilt } from "../shared/api/console-build.ts";
import { makeLogger } from "../shared/log.ts";
import { tinyPlatform } from "./helpers/platform.ts";

describe("the web console's build and routes", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
  let dir: string;
  let app: ReturnType<typeof createApp>;
  before(
    async () => {
      ctx = await tinyPlatform();
      dir = join(ctx.dir, "console");
      const built = await buildConsole(dir);
      assert.equal(built.files.length, 3);
      // The first load stays small: Preact and every page together.
      assert.ok(built.gzipBytes < 40_000, `first load ${built.gzipBytes} B gzipped`);
      app = createApp(ctx.platform, makeLogger("test", "silent"), { consoleDir: dir, keyCacheMs: 0 });
    },
    { timeout: 60_000 },
  );
  after(() => ctx?.cleanup());

  test("the build: content-hashed assets named by index.html; rebuilt only when a source is newer", async () => {
    const assets = await readdir(join(dir, "assets"));
    assert.equal(assets.length, 2);
    // By extension, not by sorted name: the hashes decide which name sorts first.
    assert.ok(
      assets.some((a) => /^app-[A-Z0-9]{8,}\.css$/.test(a)),
      assets.join(", "),
    );
    assert.ok(
      assets.some((a) => /^app-[A-Z0-9]{8,}\.js$/.test(a)),
      assets.join(", "),
    );
    const page = await readFile(join(dir, "index.html"), "utf8");
    for (const a of assets) assert.ok(page.includes(`console/assets/${a}`), a);
    assert.ok(!/<script>|style=/.test(page), "no inline script or style (the CSP forbids them)");
    assert.equal(await consoleBuildIsCurrent(dir), true);
    assert.equal(await ensureConsoleBuilt(dir), false, "a current build is kept");
    const old = new Date(Date.now() - 3_600_000);
    await utimes(join(dir, "index.html"), old, old);
    assert.equal(await consoleBuildIsCurrent(dir), false, "sources newer than the build");
  });

  test("/ and its assets: strict CSP, immutable hashed files, nothing else reachable", async () => {
    const page = await app.request("/");
    assert.equal(page.status, 200);
    assert.equal(page.headers.get("content-security-policy"), CONSOLE_CSP);
    assert.match(CONSOLE_CSP, /default-src 'self'/);
    assert.equal(page.headers.get("cache-control"), "no-cache");
    const html = await page.text();
    const script = /src="(console\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    const style = /href="(console\/assets\/[^"]+\.css)"/.exec(html)?.[1];
    assert.ok(script && style, html);
    const js = await app.request(`/${script}`);
    assert.equal(js.status, 200);
    assert.match(js.headers.get("content-type") ?? "", /^text\/javascript/);
    assert.equal(js.headers.get("cache-control"), "public, max-age=31536000, immutable");
    assert.match((await app.request(`/${style}`)).headers.get("content-type") ?? "", /^text\/css/);
    for (const path of [
      "/console/assets/app-NOTBUILT.js",
      "/console/assets/..%2Findex.html",
      "/console/assets/app.js",
      "/console/index.html",
    ]) {
      assert.equal((await app.request(path)).status, 404, path);
    }
  });

  test("a server whose console is not built still serves the API, and says why / is missing", async () => {
    const bare = createApp(ctx.platform, makeLogger("test", "silent"), { consoleDir: join(ctx.dir, "none") });
    const res = await bare.request("/");
    assert.equal(res.status, 404);
    assert.match(((await res.json()) as { error: { message: string } }).error.message, /npm run build/);
    assert.equal((await bare.request("/health")).status, 200);
  });

  test("GET /v1/me: no sign-in on a store without keys; then a key's own scopes, and 401 without one", async () => {
    const open = await app.request("/v1/me");
    assert.equal(open.status, 200);
    assert.deepEqual(await open.json(), { authRequired: false, scopes: ["admin"] });

    const make = async (body: object, key?: string) => {
      const res = await app.request("/v1/keys", {
        method: "POST",
        headers: { "content-type": "application/json", ...(key ? { "x-api-key": key } : {}) },
        body: JSON.stringify(body),
      });
      assert.equal(res.status, 201);
      return ((await res.json()) as { key: string }).key;
    };
    const admin = await make({ id: "root", scopes: ["admin"] });
    const predict = await make({ id: "webshop", scopes: ["predict"] }, admin);

    assert.equal((await app.request("/v1/me")).status, 401);
    const me = await app.request("/v1/me", { headers: { "x-api-key": predict } });
    assert.deepEqual(await me.json(), { authRequired: true, keyId: "webshop", scopes: ["predict"] });
    assert.equal((await app.request("/")).status, 200, "the page itself stays public");
  });
});
