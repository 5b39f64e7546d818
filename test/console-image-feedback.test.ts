/**
 * Corrections of image items in the console, in Chromium on the real HTTP stack
 * (test/helpers/console.ts) and a filesystem store with the tiny image backbone (a picture's mean
 * colour): red and blue squares (three red ones filed under blue) and unlabelled purple ones.
 * Flows: label 3 suggested image rows by keyboard (each shown as its thumbnail) → three
 * corrections stored with their images; accept a label issue on an image row → stored; try-it on
 * the image head → "this is wrong" → the correction stored with the picked image. At 1280×800 and
 * 390×844: no off-origin request, no console error, axe-core 0 serious/critical.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  type ConsoleServer,
  checkPage,
  heading,
  openPage,
  type Size,
  startConsole,
  type Watched,
} from "./helpers/console.ts";
import { tinyPlatform } from "./helpers/platform.ts";
import { tinySquare, writeTinyImageBackbone } from "./helpers/tiny-backbone.ts";

type Rgb = [number, number, number];
const RED: Rgb = [210, 20, 20];
const BLUE: Rgb = [20, 30, 210];
const PURPLE: Rgb = [115, 25, 115];
type Stored = { id: string; image?: string; text?: string; label: string; predictionId?: string };

describe("the console corrects image items in Chromium", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
  let srv: ConsoleServer;

  before(
    async () => {
      ctx = await tinyPlatform();
      await writeTinyImageBackbone(join(ctx.dir, "image-backbone"));
      await ctx.platform.addBackbone(join(ctx.dir, "image-backbone"));
      const dir = join(ctx.dir, "squares");
      await mkdir(join(dir, "files"), { recursive: true });
      const rows: object[] = [];
      const add = async (id: string, rgb: Rgb, i: number, label?: string) => {
        await writeFile(join(dir, "files", `${id}.png`), await tinySquare(rgb, i));
        rows.push({ id, image: `${id}.png`, ...(label ? { label } : {}) });
      };
      for (let i = 0; i < 20; i++) await add(`red-${i}`, RED, i, "red");
      for (let i = 0; i < 20; i++) await add(`blue-${i}`, BLUE, i, "blue");
      for (const i of [20, 21, 22]) await add(`misfiled-${i}`, RED, i, "blue");
      for (let i = 0; i < 6; i++) await add(`purple-${i}`, PURPLE, 60 + i);
      await writeFile(join(dir, "manifest.jsonl"), rows.map((r) => `${JSON.stringify(r)}\n`).join(""));
      await ctx.platform.upload("squares", dir);
      await ctx.platform.embed("squares", { backbone: "tiny-image" });
      await ctx.platform.train({ dataset: "squares", head: "colours", backbone: "tiny-image" });
      srv = await startConsole(ctx.platform);
    },
    { timeout: 120_000 },
  );
  after(async () => {
    await srv?.close();
    await ctx?.cleanup();
  });

  const feedback = async () =>
    ((await (await fetch(`${srv.origin}/v1/heads/colours/feedback`)).json()) as { feedback: Stored[] })
      .feedback;
  const clean = async (w: Watched) => {
    assert.deepEqual(w.elsewhere, [], "no request left this origin");
    assert.deepEqual(w.problems, [], "no console error (CSP violations included)");
    await w.page.context().close();
  };
  /** The image stored for a correction holds the bytes of the dataset file it names. */
  const storedBytes = async (f: Stored) => {
    assert.match(f.image ?? "", /^[0-9a-f]{64}\.png$/, `${f.id} has an image`);
    const obj = await ctx.platform.store.get(`heads/colours/feedback-images/${f.image}`);
    assert.ok(obj, `${f.image} stored`);
    return obj.body;
  };
  const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

  for (const size of ["desktop", "mobile"] as Size[]) {
    test(`${size}: label 3 suggested image rows by keyboard → three corrections with their images`, async () => {
      const before = (await feedback()).length;
      const w = await openPage(srv.browser, srv.origin, size);
      const { page } = w;
      await page.goto(`${srv.origin}/#/work/label`);
      await heading(page, "Label suggested items");
      await page.getByLabel("How many").fill("3");
      await page.getByRole("button", { name: "Suggest items" }).click();
      await page.getByRole("heading", { name: "Item 1 of 3" }).waitFor();
      await page.getByRole("img", { name: /^Row purple-\d: purple-\d\.png$/ }).waitFor();
      if (size === "desktop") await checkPage(w, "work-label-image", size);
      const labels = await page.getByRole("group", { name: "Labels" }).getByRole("button").allInnerTexts();
      const order = labels.map((t) => t.replace(/^\d\s*/, "").trim());
      const shown: string[] = [];
      for (let i = 0; i < 3; i++) {
        await page.getByRole("heading", { name: `Item ${i + 1} of 3` }).waitFor();
        const img = page.getByRole("img", { name: /^Row / });
        await img.waitFor();
        shown.push(((await img.getAttribute("alt")) ?? "").replace(/^Row ([^:]+):.*$/, "$1"));
        await page.keyboard.press(String(order.indexOf("blue") + 1));
        await page.getByText(`${i + 1} of 3 labelled`).waitFor();
      }
      if (size === "mobile") await checkPage(w, "work-label-image", size);
      const added = (await feedback()).slice(before);
      assert.equal(added.length, 3);
      for (const [i, f] of added.entries()) {
        assert.equal(f.label, "blue");
        assert.equal(f.text, undefined);
        const file = await ctx.platform.store.get(`datasets/squares/files/${shown[i]}.png`);
        assert.equal(sha(await storedBytes(f)), sha(file!.body), `${shown[i]}'s bytes`);
      }
      await clean(w);
    });
  }

  test("accept a label issue on an image row → its correction is stored with the image", async () => {
    const w = await openPage(srv.browser, srv.origin, "desktop");
    const { page } = w;
    await page.goto(`${srv.origin}/#/work/issues`);
    await heading(page, "Label issues");
    await page.getByRole("button", { name: "Find label issues" }).click();
    const list = page.getByRole("list", { name: "Label issues" });
    const first = list.locator("li[data-issue]").first();
    await first.waitFor();
    const id = (await first.getAttribute("data-issue")) ?? "";
    assert.match(id, /^misfiled-/);
    await first.getByRole("img", { name: new RegExp(`^Row ${id}: `) }).waitFor();
    await checkPage(w, "work-issues-image", "desktop");
    const before = (await feedback()).length;
    await first.getByRole("button", { name: /^Accept / }).focus();
    await page.keyboard.press("Enter");
    await first.getByText("Accepted: red").waitFor();
    const added = (await feedback()).slice(before);
    assert.equal(added.length, 1);
    assert.equal(added[0].label, "red");
    const file = await ctx.platform.store.get(`datasets/squares/files/${id}.png`);
    assert.equal(sha(await storedBytes(added[0])), sha(file!.body));
    await clean(w);
  });

  test("try-it on the image head: this is wrong → the correction is stored with the picked image", async () => {
    const w = await openPage(srv.browser, srv.origin, "mobile");
    const { page } = w;
    const bytes = await tinySquare(RED, 99);
    await page.goto(`${srv.origin}/#/try/colours`);
    await heading(page, "Try it");
    await page
      .getByLabel(/^Or an image/)
      .setInputFiles({ name: "red.png", mimeType: "image/png", buffer: bytes });
    await page.getByRole("button", { name: "Predict" }).click();
    await page.getByRole("heading", { name: "Label: red" }).waitFor();
    await page.getByRole("button", { name: "This is wrong" }).click();
    await page.getByLabel("Correct label").selectOption("blue");
    await page.getByRole("button", { name: "Send correction" }).click();
    await page.getByText(/^Thanks: feedback fb-/).waitFor();
    await checkPage(w, "try-it-image-feedback", "mobile");
    const last = (await feedback()).at(-1)!;
    assert.equal(last.label, "blue");
    assert.match(last.predictionId ?? "", /^p-[0-9a-f]{24}$/);
    assert.equal(sha(await storedBytes(last)), sha(bytes));
    await clean(w);
  });
});
