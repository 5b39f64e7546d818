/**
 * The console's datasets part in Chromium on the real HTTP stack: upload a CSV with the file
 * picker → upload progress → embedding progress (the job held at `planned` by a gate in front of
 * the real local runner, then let go) → items, label bars, the bad row's line and reason, the
 * map; upload a folder of labelled PNG squares (the tiny image backbone) → the map shows both
 * classes; a zip of the same folder; and a store seeded as `npm start` seeds it (the demo's
 * dataset and head names, through the same platform calls) shows both on the first page. Every
 * page at 1280×800 and 390×844: axe-core, no console error, no request off the origin.
 */
import assert from "node:assert/strict";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { zipSync } from "fflate";
import type { Browser } from "playwright-core";
import { loadConfig } from "../shared/config.ts";
import { DEMO_DATASET, DEMO_HEAD } from "../shared/demo.ts";
import type { EmbedJob } from "../shared/embed/job.ts";
import { Platform } from "../shared/platform.ts";
import { FsStore } from "../shared/store/fs.ts";
import {
  checkPage,
  createKey,
  heading,
  openPage,
  SIZES,
  type Size,
  startConsole,
  type Watched,
} from "./helpers/console.ts";
import { tempDir } from "./helpers/platform.ts";
import {
  tinySentimentRows,
  tinySquare,
  toJsonlText,
  writeTinyBackbone,
  writeTinyImageBackbone,
} from "./helpers/tiny-backbone.ts";

/** Holds submitted embedding jobs until `open()`, then hands them to the platform's local runner. */
class Gate {
  private release!: () => void;
  private opened = new Promise<void>((r) => {
    this.release = r;
  });
  readonly name = "gate";
  platform?: Platform;
  close() {
    this.opened = new Promise<void>((r) => {
      this.release = r;
    });
  }
  open() {
    this.release();
  }
  async submit(job: EmbedJob): Promise<EmbedJob> {
    const held = this.opened;
    void held.then(() => this.platform?.local.submit(job));
    return job;
  }
  async submitAll(jobs: readonly EmbedJob[]): Promise<EmbedJob[]> {
    const held = this.opened;
    void held.then(() => this.platform?.local.submitAll(jobs));
    return [...jobs];
  }
}

async function imagePlatform(gate: Gate) {
  const dir = await tempDir();
  const store = new FsStore(join(dir, "store"));
  const config = loadConfig(
    {},
    {
      store: store.root,
      defaultBackbone: "tiny-text",
      defaultImageBackbone: "tiny-image",
      modelsDir: join(dir, "models"),
    },
  );
  const platform = new Platform(store, config, { runner: gate });
  gate.platform = platform;
  await writeTinyBackbone(join(dir, "text"));
  await platform.addBackbone(join(dir, "text"));
  await writeTinyImageBackbone(join(dir, "image"));
  await platform.addBackbone(join(dir, "image"));
  return { dir, platform };
}

const csvOf = (rows: Array<{ id: string; text: string; label: string }>) =>
  `id,text,label\n${rows.map((r) => `${r.id},"${r.text}",${r.label}`).join("\n")}\n`;

/** Two colours, `n` squares each, as `<label>/<file>` paths below a `shapes/` folder. */
async function squares(n: number): Promise<Array<{ path: string; bytes: Buffer }>> {
  const out: Array<{ path: string; bytes: Buffer }> = [];
  for (const [label, rgb] of [
    ["red", [220, 30, 30]],
    ["blue", [30, 30, 220]],
  ] as const) {
    for (let i = 0; i < n; i++)
      out.push({ path: `shapes/${label}/${i}.png`, bytes: await tinySquare([...rgb], i) });
  }
  return out;
}

describe("the console's datasets in Chromium", () => {
  const gate = new Gate();
  let ctx: Awaited<ReturnType<typeof imagePlatform>>;
  let origin: string;
  let browser: Browser;
  let close: () => Promise<void>;

  before(
    async () => {
      ctx = await imagePlatform(gate);
      ({ origin, browser, close } = await startConsole(ctx.platform));
    },
    { timeout: 120_000 },
  );
  after(async () => {
    gate.open();
    await ctx.platform.local.idle();
    await close?.();
    await rm(ctx.dir, { recursive: true, force: true });
  });

  const done = async (w: Watched) => {
    assert.deepEqual(w.elsewhere, [], "no request left this origin");
    assert.deepEqual(w.problems, [], "no console error");
    await w.page.context().close();
  };

  /** The map's legend entries and the points drawn per label. */
  async function mapCounts(w: Watched): Promise<{ legend: string[]; points: Record<string, number> }> {
    const map = w.page.getByRole("img", { name: /^Embedding map\./ });
    await map.waitFor();
    const legend = await w.page
      .getByRole("list", { name: "Labels on the map" })
      .getByRole("listitem")
      .allInnerTexts();
    const labels = await map
      .locator("circle")
      .evaluateAll((cs) => cs.map((c) => c.getAttribute("data-label")));
    const points: Record<string, number> = {};
    for (const l of labels) points[String(l)] = (points[String(l)] ?? 0) + 1;
    return { legend: legend.map((s) => s.trim()), points };
  }

  for (const size of Object.keys(SIZES) as Size[]) {
    test(`${size}: a CSV by the file picker → upload → embedding progress → rows, labels, a bad row, the map`, async () => {
      const w = await openPage(browser, origin, size);
      const { page } = w;
      const name = `notes-${size}`;
      gate.close();
      await page.goto(`${origin}/`);
      await heading(page, "Datasets");
      await page.getByLabel("Dataset name").fill(name);
      const rows = tinySentimentRows(24).map((r) => ({ id: r.id, text: r.text, label: String(r.label) }));
      const csv = `${csvOf(rows)}bad1,,pos\n`;
      await page
        .getByLabel("Manifest or zip")
        .setInputFiles({ name: "notes.csv", mimeType: "text/csv", buffer: Buffer.from(csv) });
      await page.getByText(/CSV manifest notes\.csv/).waitFor();
      await checkPage(w, "dataset-upload", size);
      // The manifest's PUT is held until the upload's progress bar has been seen.
      let letGo = () => {};
      const held = new Promise<void>((r) => {
        letGo = r;
      });
      await page.route(`**/v1/datasets/${name}/manifest`, async (route) => {
        await held;
        await route.continue();
      });
      await page.getByRole("button", { name: "Upload" }).click();
      await page.getByRole("progressbar", { name: "Uploading" }).waitFor();
      assert.match((await page.locator(".progress").textContent()) ?? "", / of \d+ B/);
      letGo();
      await heading(page, name);
      // The job waits at the gate: the bar shows, then fills once the runner has it.
      const bar = page.getByRole("progressbar", { name: /Embedding with tiny-text/ });
      await bar.waitFor();
      assert.match(
        (await page.locator(".progress").textContent()) ?? "",
        /0 of 1 shards .* waiting to start/,
      );
      await checkPage(w, "dataset-embedding", size);
      gate.open();
      await bar.waitFor({ state: "detached" });
      assert.match(
        (await page.locator(".facts").textContent()) ?? "",
        /Cached embeddings \(tiny-text\)\s*24/,
      );
      await page
        .getByRole("img", { name: /Items per label\. (pos: 12, neg: 12|neg: 12, pos: 12)/ })
        .waitFor();
      const rejected = page.getByRole("region", { name: "Rejected rows", exact: true });
      const cells = await rejected.getByRole("row").nth(1).getByRole("cell").allInnerTexts();
      assert.equal(cells[0], "26", "the bad row's line (the header is line 1)");
      assert.equal(cells[2], "text");
      assert.match(cells[3], /text/);
      const { legend, points } = await mapCounts(w);
      assert.deepEqual(legend.sort(), ["neg (12)", "pos (12)"]);
      assert.deepEqual(points, { neg: 12, pos: 12 });
      // Hovering a point, or the slider, shows the item's text.
      await page.getByLabel("Point").focus();
      await page.keyboard.press("End");
      await page.locator(".point blockquote").waitFor();
      await checkPage(w, "dataset-map", size);
      await done(w);
    });
  }

  test("a folder of labelled images by the folder picker → the map shows both classes, a thumbnail", async () => {
    const w = await openPage(browser, origin, "desktop");
    const { page } = w;
    gate.open();
    await page.goto(`${origin}/#/datasets`);
    await heading(page, "Datasets");
    await page.getByLabel("Dataset name").fill("shapes");
    // A folder on disk, chosen whole by the folder picker (playwright hands Chromium the directory).
    const folder = join(ctx.dir, "upload", "shapes");
    for (const f of await squares(5)) {
      await mkdir(join(ctx.dir, "upload", dirname(f.path)), { recursive: true });
      await writeFile(join(ctx.dir, "upload", f.path), f.bytes);
    }
    await writeFile(join(folder, "notes.txt"), "not an image");
    await page.getByLabel("Folder of labelled images").setInputFiles(folder);
    await page.getByText("1 files skipped").waitFor();
    await page.getByText("10 images in 2 labels").waitFor();
    await page.getByRole("button", { name: "Upload" }).click();
    await heading(page, "shapes");
    const { legend, points } = await mapCounts(w);
    assert.deepEqual(legend.sort(), ["blue (5)", "red (5)"]);
    assert.deepEqual(points, { blue: 5, red: 5 });
    const fills = await page
      .getByRole("list", { name: "Labels on the map" })
      .locator("circle")
      .evaluateAll((cs) => cs.map((c) => c.getAttribute("fill")));
    assert.equal(new Set(fills).size, 2, "two label colours");
    // The last point drawn is on top of any it overlaps.
    await page.locator("svg.scatter circle").last().hover();
    const thumb = page.getByRole("img", { name: "red/4.png" });
    await thumb.waitFor();
    assert.ok(
      await thumb.evaluate((img) => {
        const drawn = img as unknown as { complete: boolean; naturalWidth: number };
        return drawn.complete && drawn.naturalWidth === 8;
      }),
      "the PNG drawn",
    );
    await checkPage(w, "dataset-images", "desktop");
    await done(w);
  });

  test("a zip of the folder is unpacked in the browser and uploads the same", async () => {
    const w = await openPage(browser, origin, "desktop");
    const { page } = w;
    await page.goto(`${origin}/#/datasets`);
    await heading(page, "Datasets");
    gate.open();
    await page.getByLabel("Dataset name").fill("shapes-zip");
    const zip = zipSync(Object.fromEntries((await squares(3)).map((f) => [f.path, new Uint8Array(f.bytes)])));
    await page
      .getByLabel("Manifest or zip")
      .setInputFiles({ name: "shapes.zip", mimeType: "application/zip", buffer: Buffer.from(zip) });
    await page.getByText("6 images in 2 labels").waitFor();
    await page.getByRole("button", { name: "Upload" }).click();
    await heading(page, "shapes-zip");
    const { points } = await mapCounts(w);
    assert.deepEqual(points, { blue: 3, red: 3 });
    await done(w);
  });

  test("a JSONL manifest dropped on the zone uploads like a picked one", async () => {
    const w = await openPage(browser, origin, "desktop");
    const { page } = w;
    gate.open();
    await page.goto(`${origin}/#/datasets`);
    await heading(page, "Datasets");
    await page.getByLabel("Dataset name").fill("dropped");
    const jsonl = toJsonlText(tinySentimentRows(10));
    // A drag from the desktop, as Chromium delivers it: a drop event whose dataTransfer holds the file.
    const data = await page.evaluateHandle(
      `(() => { const dt = new DataTransfer(); dt.items.add(new File([${JSON.stringify(jsonl)}], "rows.jsonl")); return dt; })()`,
    );
    await page.locator(".upload-drop").dispatchEvent("dragover", { dataTransfer: data });
    await page.locator(".upload-drop").dispatchEvent("drop", { dataTransfer: data });
    await page.getByText(/JSONL manifest rows\.jsonl/).waitFor();
    await page.getByRole("button", { name: "Upload" }).click();
    await heading(page, "dropped");
    assert.deepEqual((await mapCounts(w)).legend.sort(), ["neg (5)", "pos (5)"]);
    await done(w);
  });

  test("a bad name is refused in the form; an upload the API refuses shows its message", async () => {
    const w = await openPage(browser, origin, "desktop");
    const { page } = w;
    await page.goto(`${origin}/#/datasets`);
    await heading(page, "Datasets");
    await page.getByLabel("Dataset name").fill("Bad Name");
    await page.getByText(/Lower-case letters/).waitFor();
    await page.getByLabel("Dataset name").fill("empty");
    await page
      .getByLabel("Manifest or zip")
      .setInputFiles({ name: "empty.csv", mimeType: "text/csv", buffer: Buffer.from("id,text,label\n") });
    await page.getByRole("button", { name: "Upload" }).click();
    await page.getByRole("alert").waitFor();
    assert.match((await page.getByRole("alert").textContent()) ?? "", /empty|no rows/i);
    // The refused upload is a 400 the browser logs; nothing else may be.
    assert.deepEqual(
      w.problems.filter((p) => !/status of 400/.test(p)),
      [],
    );
    assert.deepEqual(w.elsewhere, []);
    await page.context().close();
  });

  test("a store seeded as `npm start` seeds it shows the demo's dataset and head", async () => {
    // The demo's names through the platform calls runDemo makes (putManifest, embed, train), on
    // tiny rows and the tiny backbone instead of 50,000 IMDB reviews and GloVe.
    const { platform } = ctx;
    await platform.putManifest(
      DEMO_DATASET,
      "jsonl",
      toJsonlText(tinySentimentRows(40, { withSplit: true })),
    );
    await platform.embed(DEMO_DATASET);
    await platform.train({ dataset: DEMO_DATASET, head: DEMO_HEAD });
    for (const size of Object.keys(SIZES) as Size[]) {
      const w = await openPage(browser, origin, size);
      const { page } = w;
      await page.goto(`${origin}/`);
      await heading(page, "Datasets");
      await page.getByRole("link", { name: DEMO_DATASET, exact: true }).waitFor();
      await page.getByRole("navigation", { name: "Sections" }).getByRole("link", { name: "Heads" }).click();
      await heading(page, "Heads");
      await page.getByRole("link", { name: DEMO_HEAD }).waitFor();
      await done(w);
    }
  });
  // Last: once a key exists, the server wants one from every caller.
  test("with keys: an ingest key uploads a zip and sees thumbnails (fetched with the key)", async () => {
    const made = (body: { id: string; scopes: string[] }, key?: string) => createKey(origin, body, key);
    gate.open();
    const admin = await made({ id: "root", scopes: ["admin"] });
    const ingestKey = await made({ id: "uploader", scopes: ["ingest"] }, admin);
    const w = await openPage(browser, origin, "mobile");
    const { page } = w;
    await page.goto(`${origin}/`);
    await page.getByLabel("API key").fill(ingestKey);
    await page.getByRole("button", { name: "Sign in" }).click();
    await heading(page, "Datasets");
    await page.getByLabel("Dataset name").fill("keyed");
    const zip = zipSync(Object.fromEntries((await squares(2)).map((f) => [f.path, new Uint8Array(f.bytes)])));
    await page
      .getByLabel("Manifest or zip")
      .setInputFiles({ name: "shapes.zip", mimeType: "application/zip", buffer: Buffer.from(zip) });
    await page.getByRole("button", { name: "Upload" }).click();
    await heading(page, "keyed");
    assert.deepEqual((await mapCounts(w)).points, { blue: 2, red: 2 });
    await page.getByLabel("Point").focus();
    await page.keyboard.press("End");
    await page.getByRole("img", { name: "red/1.png" }).waitFor();
    // Without the key the same file is refused: the page's thumbnail came through the key.
    const bare = await fetch(`${origin}/v1/datasets/keyed/files?path=red%2F1.png`);
    assert.equal(bare.status, 401);
    assert.deepEqual(w.elsewhere, []);
    // The sign-in page's probe of GET /v1/me without a key is a 401 the browser logs; nothing else.
    assert.deepEqual(
      w.problems.filter((p) => !/status of 401/.test(p)),
      [],
    );
    await page.context().close();

    // A train key reads datasets but may not upload: no form.
    const trainKey = await made({ id: "trainer", scopes: ["train"] }, admin);
    const t = await openPage(browser, origin, "desktop");
    await t.page.goto(`${origin}/`);
    await t.page.getByLabel("API key").fill(trainKey);
    await t.page.getByRole("button", { name: "Sign in" }).click();
    await heading(t.page, "Datasets");
    await t.page.getByRole("link", { name: "keyed" }).waitFor();
    await t.page.waitForLoadState("networkidle"); // GET /v1/me answered too
    assert.equal(await t.page.getByRole("heading", { name: "Upload a dataset" }).count(), 0);
    await t.page.context().close();
  });
});
