/**
 * The console's heads and try-it pages in Chromium on the real HTTP stack (a filesystem store, the
 * tiny text and image backbones): train `auto` from the form → live progress → the report with
 * the model search table and the calibration chart → try it → "this is wrong" stores a feedback →
 * promote an older version and roll back, each behind a confirmation dialog → export both ONNX
 * models; an image head answers a picked and a dropped PNG; the API's field-named error shows on
 * the form; a `predict` key cannot reach the train form and the API refuses it. Every page at
 * 1280×800 and 390×844: axe-core 0 serious/critical, no console error, no off-origin request.
 */
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Browser, Page } from "playwright-core";
import { HEAD_TYPES, UNKNOWN_SCORERS } from "../console/head-types.ts";
import { UNKNOWN_SCORERS as API_SCORERS } from "../shared/heads/train-request.ts";
import { HEAD_KINDS } from "../shared/learn/registry.ts";
import {
  checkPage,
  createKey,
  heading,
  openPage,
  type Size,
  startConsole,
  type Watched,
} from "./helpers/console.ts";
import { tinyPlatform } from "./helpers/platform.ts";
import {
  tinySentimentRows,
  tinySquare,
  toJsonlText,
  writeTinyImageBackbone,
} from "./helpers/tiny-backbone.ts";

/** Waits until the element `selector` matches has the focus (effects run after the paint). */
const focused = (page: Page, selector: string) =>
  page.waitForFunction(`document.activeElement?.matches(${JSON.stringify(selector)})`, undefined, {
    timeout: 5000,
  });

const RED: [number, number, number] = [220, 30, 30];
const BLUE: [number, number, number] = [30, 40, 220];

test("the train form offers every registered head type and unknown scorer", () => {
  assert.deepEqual([...HEAD_TYPES].sort(), Object.keys(HEAD_KINDS).sort());
  assert.deepEqual([...UNKNOWN_SCORERS], [...API_SCORERS]);
});

describe("the console's heads and try-it pages in Chromium", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
  let close: () => Promise<void>;
  let origin: string;
  let browser: Browser;
  /** The version of `sentiment` trained before the form's, which the test promotes. */
  let older: string;

  before(
    async () => {
      ctx = await tinyPlatform();
      await ctx.platform.putManifest("reviews", "jsonl", toJsonlText(tinySentimentRows(40)));
      await ctx.platform.embed("reviews");
      older = (await ctx.platform.train({ dataset: "reviews", head: "sentiment" })).version;
      await writeTinyImageBackbone(join(ctx.dir, "image-backbone"));
      await ctx.platform.addBackbone(join(ctx.dir, "image-backbone"));
      const folder = join(ctx.dir, "colours");
      for (const [label, rgb] of Object.entries({ red: RED, blue: BLUE })) {
        await mkdir(join(folder, label), { recursive: true });
        for (let i = 0; i < 6; i++)
          await writeFile(join(folder, label, `${i}.png`), await tinySquare(rgb, i));
      }
      await ctx.platform.upload("colours", folder);
      await ctx.platform.embed("colours", { backbone: "tiny-image" });
      await ctx.platform.train({ dataset: "colours", head: "colours", backbone: "tiny-image" });
      ({ origin, browser, close } = await startConsole(ctx.platform));
    },
    { timeout: 120_000 },
  );
  after(async () => {
    await close?.();
    await ctx?.cleanup();
  });

  const open = (size: Size): Promise<Watched> => openPage(browser, origin, size);
  const getJson = async <T>(path: string): Promise<T> =>
    (await (await fetch(`${origin}/${path}`)).json()) as T;
  const liveOf = async () => (await getJson<{ version: string }>("v1/heads/sentiment/aliases/live")).version;

  /** The form: auto on reviews with the tiny text backbone; a slowed request, so progress shows. */
  async function trainAuto(w: Watched, size: Size): Promise<void> {
    const { page } = w;
    await page.goto(`${origin}/#/heads`);
    await heading(page, "Heads");
    await page.getByRole("link", { name: "Train a head" }).click();
    await heading(page, "Train a head");
    await page.getByLabel("Dataset").selectOption("reviews");
    await page.getByLabel("Head name").fill("sentiment");
    await page.getByLabel("Type").selectOption("auto");
    assert.equal(await page.getByLabel("Class weights").count(), 0, "auto sets no class weights");
    await page.getByRole("checkbox", { name: /tiny-text/ }).check();
    await page.getByLabel("Unknown-input scorer").selectOption("msp");
    await checkPage(w, "train", size);
    await page.route("**/v1/heads/sentiment/train", async (route) => {
      await new Promise((resolve) => setTimeout(resolve, 1500));
      await route.continue();
    });
    const sent = page.waitForRequest("**/v1/heads/sentiment/train");
    await page.getByRole("button", { name: "Train" }).click();
    const body = (await sent).postDataJSON();
    assert.deepEqual(body, { dataset: "reviews", type: "auto", backbone: "tiny-text", unknownScorer: "msp" });
    await page
      .getByRole("status")
      .getByText(/Training sentiment on reviews… \d+ s/)
      .waitFor();
    await checkPage(w, "train-progress", size);
  }

  /** The new version's report: search table with the chosen row, calibration chart and ECE. */
  async function seeReport(w: Watched, size: Size): Promise<string> {
    const { page } = w;
    await heading(page, "sentiment");
    await page.getByRole("heading", { name: "Model search" }).waitFor();
    const search = page.getByRole("region", { name: "Model search table" });
    assert.ok((await search.getByRole("row").count()) > 2, "several candidates");
    assert.equal(await search.getByRole("row").filter({ hasText: "✓ chosen" }).count(), 1);
    await page.getByRole("img", { name: /^Reliability diagram\. / }).waitFor();
    assert.ok(await page.getByText("ECE before", { exact: true }).isVisible());
    assert.ok(await page.getByText("ECE after", { exact: true }).isVisible());
    await page.getByRole("heading", { name: "Unknown inputs" }).waitFor();
    assert.ok(await page.getByText(/Scorer msp, threshold/).isVisible());
    const version = /#\/heads\/sentiment\/([^/]+)$/.exec(page.url())?.[1];
    assert.ok(version && version !== older, `the page shows the new version (${page.url()})`);
    assert.equal(await liveOf(), version, "training promoted it");
    await checkPage(w, "head-auto", size);
    return version;
  }

  /** Try it from the report, then "this is wrong" → a stored feedback with the predictionId. */
  async function tryAndCorrect(w: Watched, size: Size): Promise<void> {
    const { page } = w;
    await page.getByRole("link", { name: "Try it", exact: true }).last().click();
    await heading(page, "Try it");
    assert.equal(await page.getByLabel("Head").inputValue(), "sentiment");
    await page.getByLabel("Text").fill("a wonderful great film");
    const answered = page.waitForResponse("**/v1/heads/sentiment/predict");
    await page.getByRole("button", { name: "Predict" }).click();
    const { predictions } = (await (await answered).json()) as {
      predictions: Array<{ predictionId: string }>;
    };
    await page.getByRole("heading", { name: "Label: pos" }).waitFor();
    const neighbours = page.getByRole("region", { name: "Nearest training items table" });
    assert.equal(await neighbours.getByRole("row").count(), 6, "a header and 5 neighbours");
    await page.getByRole("button", { name: "This is wrong" }).click();
    await focused(page, "#fb-label"); // the button that opened the form is gone
    await page.getByLabel("Correct label").selectOption("neg");
    await page.getByRole("button", { name: "Send correction" }).click();
    await page.getByText(/^Thanks: feedback fb-\S+ stored \(neg\)/).waitFor();
    await checkPage(w, "try-it-feedback", size);
    const { feedback } = await getJson<{ feedback: Array<Record<string, unknown>> }>(
      "v1/heads/sentiment/feedback",
    );
    assert.equal(feedback.length, 1);
    assert.equal(feedback[0].label, "neg");
    assert.equal(feedback[0].predictionId, predictions[0].predictionId);
    assert.equal(feedback[0].text, "a wonderful great film");
  }

  /** Opens a confirmation dialog with `button`; Escape first closes it and focus returns. */
  async function confirmWith(
    w: Watched,
    button: ReturnType<Page["getByRole"]>,
    title: RegExp,
    shot?: string,
  ) {
    const { page } = w;
    await button.click();
    const dialog = page.getByRole("dialog", { name: title });
    await dialog.waitFor();
    await focused(page, "dialog[open] .actions button:first-child"); // Cancel, the safe choice
    await page.keyboard.press("Tab");
    await page.keyboard.press("Tab");
    assert.ok(
      await page.evaluate<boolean>(
        "document.activeElement === document.body || !!document.activeElement.closest('dialog')",
      ),
      "focus stays in the modal dialog",
    );
    if (shot) await checkPage(w, shot, "desktop");
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "hidden" });
    await button.evaluate((el) => el.setAttribute("data-opener", ""));
    await focused(page, "[data-opener]"); // back on the control that opened it
    await button.evaluate((el) => el.removeAttribute("data-opener"));
    await button.click();
    await dialog.getByRole("button", { name: /^(Promote|Roll back)$/ }).click();
    await dialog.waitFor({ state: "hidden" });
  }

  async function promoteAndRollBack(w: Watched, newer: string): Promise<void> {
    const { page } = w;
    await page.goto(`${origin}/#/heads/sentiment`);
    await heading(page, "sentiment");
    const versions = page.getByRole("region", { name: "Versions table" });
    const promote = versions.getByRole("button", { name: `Promote ${older}` });
    await confirmWith(w, promote, new RegExp(`^Promote ${older} to live\\?`), "promote-dialog");
    await page.getByText(`Promoted: live now points to ${older}.`).waitFor();
    assert.equal(await liveOf(), older);
    const back = page.getByRole("button", { name: `Roll back live to ${newer}` });
    await confirmWith(w, back, new RegExp(`^Roll back live to ${newer}\\?`));
    await page.getByText(`Rolled back: live now points to ${newer} (was ${older}).`).waitFor();
    assert.equal(await liveOf(), newer);
  }

  async function exportBoth(w: Watched, version: string): Promise<void> {
    const { page } = w;
    for (const [name, file] of [
      ["Head ONNX", `sentiment-${version}.onnx`],
      ["Fused backbone + head ONNX", `sentiment-${version}-fused.onnx`],
    ]) {
      const download = page.waitForEvent("download");
      await page.getByRole("button", { name, exact: true }).click();
      const got = await download;
      assert.equal(got.suggestedFilename(), file);
      await page.getByText(new RegExp(`^Downloaded ${file.replace(/\./g, "\\.")} \\(`)).waitFor();
    }
  }

  test("desktop: train auto from the form → report → try it → this is wrong → promote, roll back, export", async () => {
    const w = await open("desktop");
    await trainAuto(w, "desktop");
    const version = await seeReport(w, "desktop");
    await tryAndCorrect(w, "desktop");
    await promoteAndRollBack(w, version);
    await exportBoth(w, version);
    assert.deepEqual(w.elsewhere, [], "no request left this origin");
    assert.deepEqual(w.problems, [], "no console error");
    await w.page.context().close();
  });

  test("mobile: the train form names the field the API refuses; the auto report and versions fit", async () => {
    const w = await open("mobile");
    const { page } = w;
    await page.goto(`${origin}/#/datasets/reviews`);
    await heading(page, "reviews");
    await page.getByRole("link", { name: "Train a head on reviews" }).click();
    await heading(page, "Train a head");
    assert.match(page.url(), /#\/train\/reviews$/);
    assert.equal(await page.getByLabel("Dataset").inputValue(), "reviews", "the dataset from the route");
    await page.getByLabel("Head name").fill("topics");
    await page.getByLabel("Type").selectOption("zero-shot");
    await page.getByLabel(/^Labels, one per line/).fill("pos: a positive review");
    await page.getByRole("button", { name: "Train" }).click();
    await page
      .getByRole("alert")
      .getByText(/^labels: /)
      .waitFor();
    assert.equal(await page.getByLabel(/^Labels, one per line/).getAttribute("aria-invalid"), "true");
    await focused(page, "#train-labels");
    await checkPage(w, "train-error", "mobile");
    assert.equal((await getJson<unknown[]>("v1/heads")).length, 2, "nothing trained");
    await page.goto(`${origin}/#/heads/sentiment`);
    await heading(page, "sentiment");
    await page.getByRole("img", { name: /^Reliability diagram\. / }).waitFor();
    await checkPage(w, "head-auto", "mobile");
    const promote = page
      .getByRole("region", { name: "Versions table" })
      .getByRole("button", { name: /^Promote/ });
    await promote.first().click();
    await page.getByRole("dialog", { name: /^Promote .* to live\?/ }).waitFor();
    await checkPage(w, "promote-dialog", "mobile");
    await page.keyboard.press("Escape");
    await page.getByRole("dialog").waitFor({ state: "hidden" });
    assert.deepEqual(w.elsewhere, []);
    // The one refusal provoked on purpose (the 400) is logged by the browser as a failed load.
    assert.deepEqual(
      w.problems.filter((p) => !/status of 400/.test(p)),
      [],
    );
    await w.page.context().close();
  });

  for (const size of ["desktop", "mobile"] as Size[]) {
    test(`${size}: an image head answers a picked and a dropped PNG`, async () => {
      const w = await open(size);
      const { page } = w;
      await page.goto(`${origin}/#/try/colours`);
      await heading(page, "Try it");
      await page
        .getByLabel(/^Or an image/)
        .setInputFiles({ name: "red.png", mimeType: "image/png", buffer: await tinySquare(RED, 9) });
      await page.getByRole("img", { name: "The chosen file, red.png" }).waitFor();
      await page.getByRole("button", { name: "Predict" }).click();
      await page.getByRole("heading", { name: "Label: red" }).waitFor();
      await page.getByRole("button", { name: "Remove image" }).click();
      const blue = (await tinySquare(BLUE, 9)).toString("base64");
      // A drop as the browser makes one: a DataTransfer holding the file, on the drop zone.
      await page.evaluate(`(() => {
        const bytes = Uint8Array.from(atob("${blue}"), (c) => c.charCodeAt(0));
        const data = new DataTransfer();
        data.items.add(new File([bytes], "blue.png", { type: "image/png" }));
        document.querySelector(".drop").dispatchEvent(new DragEvent("drop", { dataTransfer: data, bubbles: true }));
      })()`);
      await page.getByRole("img", { name: "The chosen file, blue.png" }).waitFor();
      await page.getByRole("button", { name: "Predict" }).click();
      await page.getByRole("heading", { name: "Label: blue" }).waitFor();
      await page.getByRole("region", { name: "Nearest training items table" }).waitFor();
      // Each neighbour's training image, fetched through the API (`files?path=`).
      await page
        .getByRole("region", { name: "Nearest training items table" })
        .getByRole("img", { name: /^Training item / })
        .first()
        .waitFor();
      // An image prediction can be corrected too (test/console-image-feedback.test.ts sends one).
      assert.equal(await page.getByRole("button", { name: "This is wrong" }).count(), 1);
      await checkPage(w, "try-it-image", size);
      assert.deepEqual(w.elsewhere, []);
      assert.deepEqual(w.problems, []);
      await w.page.context().close();
    });
  }

  // Last: creating keys turns authentication on for this store.
  test("a predict key cannot reach the train form, and the API refuses it training", async () => {
    const made = (body: { id: string; scopes: string[] }, key?: string) => createKey(origin, body, key);
    const admin = await made({ id: "root", scopes: ["admin"] });
    const predictKey = await made({ id: "shop", scopes: ["predict"] }, admin);
    const w = await open("desktop");
    const { page } = w;
    await page.goto(`${origin}/`);
    await page.getByLabel("API key").fill(predictKey);
    await page.getByRole("button", { name: "Sign in" }).click();
    await heading(page, "Try it");
    await page.goto(`${origin}/#/train/reviews`);
    await heading(page, "Try it");
    assert.equal(await page.getByRole("link", { name: "Train a head" }).count(), 0);
    assert.equal(await page.getByLabel("Head name").count(), 0, "no train form");
    const refused = await page.evaluate<number>(`fetch("v1/heads/sentiment/train", {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": sessionStorage.getItem("headstart.apiKey") },
      body: JSON.stringify({ dataset: "reviews", type: "auto" }),
    }).then((res) => res.status)`);
    assert.equal(refused, 403);
    assert.deepEqual(w.elsewhere, []);
    // The browser logs the provoked refusals (the keyless probe's 401, the training's 403).
    assert.deepEqual(
      w.problems.filter((p) => !/status of 40[13]/.test(p)),
      [],
    );
    await w.page.context().close();
  });
});

describe("the train form when the API hands training over (202, as in AWS)", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
  let server: Awaited<ReturnType<typeof startConsole>>;
  before(
    async () => {
      // A dispatcher that trains 2.5 s later in this process, as the train Lambda would elsewhere.
      ctx = await tinyPlatform({
        trainDispatcher: {
          name: "later",
          dispatch: async (request) => {
            setTimeout(() => void ctx.platform.train(request), 2500);
          },
        },
      });
      await ctx.platform.putManifest("reviews", "jsonl", toJsonlText(tinySentimentRows(30)));
      await ctx.platform.embed("reviews");
      server = await startConsole(ctx.platform);
    },
    { timeout: 120_000 },
  );
  after(async () => {
    await server?.close();
    await ctx?.cleanup();
  });

  test("accepted, then polling until the version exists, then its report", async () => {
    const w = await openPage(server.browser, server.origin, "desktop");
    const { page } = w;
    await page.goto(`${server.origin}/#/train/reviews`);
    await heading(page, "Train a head");
    await page.getByLabel("Head name").fill("later");
    await page.getByLabel("Class weights").selectOption("balanced");
    const answered = page.waitForResponse("**/v1/heads/later/train");
    await page.getByRole("button", { name: "Train" }).click();
    assert.equal((await answered).status(), 202);
    await page
      .getByRole("status")
      .getByText(/Accepted: training later in the background/)
      .waitFor();
    await heading(page, "later");
    await page.getByText("Accuracy", { exact: true }).waitFor();
    const [version] = (await ctx.platform.headInfo("later")).versions;
    assert.match(page.url(), new RegExp(`#/heads/later/${version}$`));
    assert.deepEqual(w.elsewhere, []);
    assert.deepEqual(w.problems, []);
    await page.context().close();
  });
});
