/**
 * The console's one chained flow (issue 17), in Chromium on the real HTTP stack with a filesystem
 * store and the tiny text backbone as the default: sign in with an admin key → upload a small CSV
 * → embedded → train `auto` → its report → train `logreg` (a second version) → try it answers,
 * its nearest training items showing their texts → promote the older version, roll back. One page
 * session at 1280×800; every page: axe-core 0 serious/critical, no console error, no request off
 * the origin.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Browser, Locator, Page } from "playwright-core";
import { checkPage, createKey, heading, openPage, startConsole, type Watched } from "./helpers/console.ts";
import { tinyPlatform } from "./helpers/platform.ts";
import { tinySentimentRows } from "./helpers/tiny-backbone.ts";

const DATASET = "notes";
const HEAD = "mood";
const rows = tinySentimentRows(40).map((r) => ({ id: r.id, text: r.text, label: String(r.label) }));
const csv = `id,text,label\n${rows.map((r) => `${r.id},"${r.text}",${r.label}`).join("\n")}\n`;

let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
let server: Awaited<ReturnType<typeof startConsole>>;
let browser: Browser;
let origin: string;
let admin: string;

before(
  async () => {
    ctx = await tinyPlatform();
    server = await startConsole(ctx.platform);
    ({ browser, origin } = server);
    admin = await createKey(origin, { id: "root", scopes: ["admin"] });
  },
  { timeout: 120_000 },
);
after(async () => {
  await ctx?.platform.local.idle();
  await server?.close();
  await ctx?.cleanup();
});

const liveOf = async () =>
  (
    (await (
      await fetch(`${origin}/v1/heads/${HEAD}/aliases/live`, { headers: { "x-api-key": admin } })
    ).json()) as { version: string }
  ).version;

const nav = (page: Page, name: string) =>
  page.getByRole("navigation", { name: "Sections" }).getByRole("link", { name, exact: true }).click();

async function signIn(w: Watched): Promise<void> {
  await w.page.goto(`${origin}/`);
  await w.page.getByLabel("API key").fill(admin);
  await checkPage(w, "flow-sign-in", "desktop");
  await w.page.getByRole("button", { name: "Sign in" }).click();
  await heading(w.page, "Datasets");
}

/** The CSV by the file picker → the dataset's page once its embedding is cached. */
async function uploadCsv(w: Watched): Promise<void> {
  const { page } = w;
  await page.getByLabel("Dataset name").fill(DATASET);
  await page
    .getByLabel("Manifest or zip")
    .setInputFiles({ name: "notes.csv", mimeType: "text/csv", buffer: Buffer.from(csv) });
  await page.getByText(/CSV manifest notes\.csv/).waitFor();
  await checkPage(w, "flow-upload", "desktop");
  await page.getByRole("button", { name: "Upload" }).click();
  await heading(page, DATASET);
  await page
    .locator(".facts")
    .getByText(/Cached embeddings \(tiny-text\)\s*40/)
    .waitFor({ timeout: 60_000 });
  await page.getByRole("progressbar").waitFor({ state: "detached" });
  await checkPage(w, "flow-dataset", "desktop");
}

/** The train form with `type` → its report; answers the new version. */
async function train(w: Watched, type: "auto" | "logreg", from: () => Promise<void>): Promise<string> {
  const { page } = w;
  await from();
  await heading(page, "Train a head");
  assert.equal(await page.getByLabel("Dataset").inputValue(), DATASET);
  await page.getByLabel("Head name").fill(HEAD);
  await page.getByLabel("Type").selectOption(type);
  await checkPage(w, `flow-train-${type}`, "desktop");
  const answered = page.waitForResponse(`**/v1/heads/${HEAD}/train`);
  await page.getByRole("button", { name: "Train" }).click();
  assert.equal((await answered).status(), 200, "trained in this process");
  await heading(page, HEAD);
  await page.waitForURL(new RegExp(`#/heads/${HEAD}/[^/]+$`));
  const version = /#\/heads\/[^/]+\/([^/]+)$/.exec(page.url())?.[1];
  assert.ok(version, page.url());
  await page.getByText("Accuracy", { exact: true }).first().waitFor();
  if (type === "auto") {
    await page.getByRole("heading", { name: "Model search" }).waitFor();
    const search = page.getByRole("region", { name: "Model search table" });
    assert.equal(await search.getByRole("row").filter({ hasText: "✓ chosen" }).count(), 1);
  }
  assert.equal(await liveOf(), version, "training made it live");
  await checkPage(w, `flow-report-${type}`, "desktop");
  return version;
}

/** Try it on the live head: a label, and the nearest training items with their texts. */
async function tryIt(w: Watched): Promise<void> {
  const { page } = w;
  await nav(page, "Try it");
  await heading(page, "Try it");
  await page.getByLabel("Head").selectOption(HEAD);
  await page.getByLabel("Text").fill("a wonderful great film");
  const answered = page.waitForResponse(`**/v1/heads/${HEAD}/predict`);
  await page.getByRole("button", { name: "Predict" }).click();
  const { predictions } = (await (await answered).json()) as {
    predictions: Array<{ neighbors: Array<{ id: string; text?: string }> }>;
  };
  await page.getByRole("heading", { name: /^Label: (pos|neg)$/ }).waitFor();
  const table = page.getByRole("region", { name: "Nearest training items table" });
  assert.equal(await table.getByRole("row").count(), 6, "a header and 5 neighbours");
  const first = predictions[0].neighbors[0];
  const row = rows.find((r) => r.id === first.id);
  assert.ok(row, `a training row: ${first.id}`);
  assert.equal(first.text, row.text, "the API names the neighbour's text");
  // The page shows it, in the neighbour's row (waitFor: visible).
  await table
    .getByRole("row", { name: new RegExp(`^${first.id}\\b`) })
    .getByRole("cell", { name: row.text, exact: true })
    .waitFor();
  await checkPage(w, "flow-try-it", "desktop");
}

/** A confirmation dialog opened by `button`, confirmed. */
async function confirm(page: Page, button: Locator, title: RegExp): Promise<void> {
  await button.click();
  const dialog = page.getByRole("dialog", { name: title });
  await dialog.waitFor();
  await dialog.getByRole("button", { name: /^(Promote|Roll back)$/ }).click();
  await dialog.waitFor({ state: "hidden" });
}

async function promoteAndRollBack(w: Watched, older: string, newer: string): Promise<void> {
  const { page } = w;
  await nav(page, "Heads");
  await heading(page, "Heads");
  await page.getByRole("link", { name: HEAD, exact: true }).click();
  await heading(page, HEAD);
  const versions = page.getByRole("region", { name: "Versions table" });
  await confirm(
    page,
    versions.getByRole("button", { name: `Promote ${older}` }),
    new RegExp(`^Promote ${older} to live\\?`),
  );
  await page.getByText(`Promoted: live now points to ${older}.`).waitFor();
  assert.equal(await liveOf(), older);
  await checkPage(w, "flow-promoted", "desktop");
  await confirm(
    page,
    page.getByRole("button", { name: `Roll back live to ${newer}` }),
    new RegExp(`^Roll back live to ${newer}\\?`),
  );
  await page.getByText(`Rolled back: live now points to ${newer} (was ${older}).`).waitFor();
  assert.equal(await liveOf(), newer);
  await checkPage(w, "flow-rolled-back", "desktop");
}

test("desktop: upload a CSV → embedded → train auto → report → train logreg → try it → promote, roll back", async () => {
  const w = await openPage(browser, origin, "desktop");
  const { page } = w;
  await signIn(w);
  await uploadCsv(w);
  const auto = await train(w, "auto", () =>
    page.getByRole("link", { name: `Train a head on ${DATASET}` }).click(),
  );
  const logreg = await train(w, "logreg", async () => {
    await nav(page, "Heads");
    await heading(page, "Heads");
    await page.getByRole("link", { name: "Train a head" }).click();
    await heading(page, "Train a head");
    await page.getByLabel("Dataset").selectOption(DATASET);
  });
  assert.notEqual(auto, logreg);
  await tryIt(w);
  await promoteAndRollBack(w, auto, logreg);
  assert.deepEqual(w.elsewhere, [], "no request left this origin");
  // The sign-in page's keyless probe is refused (401) before the key is given.
  assert.deepEqual(
    w.problems.filter((p) => !/status of 401/.test(p)),
    [],
  );
  await page.context().close();
});
