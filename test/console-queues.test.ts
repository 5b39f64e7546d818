/**
 * The console's work queues and settings in Chromium on the real HTTP stack (test/helpers/console.ts)
 * and a filesystem store with the tiny text backbone: a dataset of labelled and unlabelled reviews
 * (four labels flipped) and a head that captures its inputs. Flows: label 5 suggested items by
 * keyboard → retrain → a new version whose report scores the feedback rows; accept one label issue
 * → a feedback exists; a batch job → succeeded → the download holds every row; drift against the
 * captured inputs, drawn; then with keys: an admin creates a `predict` key (its secret shown once)
 * and revokes it, adds a webhook (its secret shown once) and removes it; a `train` key sees no Settings and the API refuses it the keys. Every page at
 * 1280×800 and 390×844: no off-origin request, no console error, axe-core 0 serious/critical.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, describe, test } from "node:test";
import type { Page } from "playwright-core";
import {
  type ConsoleServer,
  checkPage,
  heading,
  openPage,
  SIZES,
  type Size,
  startConsole,
  type Watched,
} from "./helpers/console.ts";
import { tinyPlatform } from "./helpers/platform.ts";
import { POSITIVE, tinySentimentRows, toJsonlText } from "./helpers/tiny-backbone.ts";

const ROWS = 60;
const LABELLED = 44;
const FLIPPED = ["r0", "r1", "r2", "r3"];

/** Labelled rows first (r0–r3 with their labels swapped), then rows without a label. */
function reviews() {
  return tinySentimentRows(ROWS).map((r, i) => {
    if (i >= LABELLED) return { id: r.id, text: r.text };
    if (FLIPPED.includes(r.id)) return { ...r, label: r.label === "pos" ? "neg" : "pos" };
    return r;
  });
}

const isPositive = (text: string) => POSITIVE.some((w) => text.split(" ").includes(w));
const readJson = async <T>(res: Response): Promise<T> => (await res.json()) as T;

describe("the console's work queues and settings in Chromium", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
  let srv: ConsoleServer;
  let job: string | undefined;
  const api = (path: string, init: RequestInit & { key?: string } = {}) =>
    fetch(`${srv.origin}/${path}`, {
      ...init,
      headers: {
        ...(init.body ? { "content-type": "application/json" } : {}),
        ...(init.key ? { "x-api-key": init.key } : {}),
      },
    });

  before(
    async () => {
      ctx = await tinyPlatform();
      const { platform } = ctx;
      await platform.putManifest("reviews", "jsonl", toJsonlText(reviews()));
      await platform.embed("reviews");
      await platform.train({ dataset: "reviews", head: "sentiment", type: "logreg", capture: "all" });
      // What the head sees in production: positive reviews only, so the captured inputs drift.
      const seen = tinySentimentRows(80, { seed: 5 }).filter((r) => r.label === "pos");
      await platform.predict("sentiment", { inputs: seen.map((r) => r.text) });
      await platform.captureIdle();
      await platform.checkCapturingHeads({ minCaptures: 10 });
      srv = await startConsole(platform);
    },
    { timeout: 120_000 },
  );
  after(async () => {
    await srv?.close();
    await ctx?.cleanup();
  });

  /** `provoked`: refusals a test asks for on purpose (the sign-in probe's 401), which the browser logs. */
  const clean = async (w: Watched, provoked?: RegExp) => {
    assert.deepEqual(w.elsewhere, [], "no request left this origin");
    const problems = w.problems.filter((p) => !provoked?.test(p));
    assert.deepEqual(problems, [], "no console error (CSP violations included)");
    await w.page.context().close();
  };

  const suggest = async (page: Page, k: number) => {
    await page.goto(`${srv.origin}/#/work/label`);
    await heading(page, "Label suggested items");
    await page.getByLabel("How many").fill(String(k));
    await page.getByRole("button", { name: "Suggest items" }).click();
    await page.getByRole("heading", { name: `Item 1 of ${k}` }).waitFor();
  };

  test("label 5 suggested items by keyboard, then retrain: the new version scores the feedback rows", async () => {
    const w = await openPage(srv.browser, srv.origin, "desktop");
    const { page } = w;
    await page.goto(`${srv.origin}/`);
    const nav = page.getByRole("navigation", { name: "Sections" });
    await nav.getByRole("link", { name: "Work" }).click();
    await heading(page, "Label suggested items");
    await suggest(page, 8);
    const labels = await page.getByRole("group", { name: "Labels" }).getByRole("button").allInnerTexts();
    const order = labels.map((t) => t.replace(/^\d\s*/, "").trim());
    assert.deepEqual(order.slice().sort(), ["neg", "pos"], "the head's labels, numbered");
    await checkPage(w, "work-label", "desktop");
    // ← and → move without labelling.
    await page.keyboard.press("ArrowRight");
    await page.getByRole("heading", { name: "Item 2 of 8" }).waitFor();
    await page.keyboard.press("ArrowLeft");
    await page.getByRole("heading", { name: "Item 1 of 8" }).waitFor();
    const sent: Array<{ text: string; label: string }> = [];
    for (let i = 0; i < 5; i++) {
      await page.getByRole("heading", { name: `Item ${i + 1} of 8` }).waitFor();
      const text = (await page.locator(".item-text").textContent()) ?? "";
      assert.ok(!/^r\d+$/.test(text) && text.includes("#"), `the row's text is shown: ${text}`);
      const label = isPositive(text) ? "pos" : "neg";
      await page.keyboard.press(String(order.indexOf(label) + 1));
      sent.push({ text, label });
      await page.getByText(`${i + 1} of 8 labelled`).waitFor();
    }
    const feedback = await readJson<{ feedback: Array<{ text: string; label: string }> }>(
      await api("v1/heads/sentiment/feedback"),
    );
    assert.deepEqual(
      feedback.feedback.map((f) => ({ text: f.text, label: f.label })),
      sent,
      "each key press is one correction of the head, with the row's text",
    );
    await page.getByRole("button", { name: "Retrain sentiment with these labels" }).click();
    await page.getByText(/^Trained on 5 feedback rows/).waitFor({ timeout: 60_000 });
    const head = await readJson<{ live: string; versions: string[] }>(await api("v1/heads/sentiment"));
    assert.equal(head.versions.length, 2, "a new version");
    const version = await readJson<{ report: { feedback: { rows: number; after: { version: string } } } }>(
      await api(`v1/heads/sentiment/versions/${head.live}`),
    );
    assert.equal(version.report.feedback.rows, 5, "its report scores the 5 feedback rows");
    assert.equal(version.report.feedback.after.version, head.live);
    assert.ok(await page.getByRole("link", { name: head.live }).isVisible(), "a link to the new version");
    await checkPage(w, "work-retrained", "desktop");
    await clean(w);
  });

  test("review label issues: accept one (a feedback) and keep one, by keyboard", async () => {
    const w = await openPage(srv.browser, srv.origin, "desktop");
    const { page } = w;
    await page.goto(`${srv.origin}/#/work/issues`);
    await heading(page, "Label issues");
    await page.getByRole("button", { name: "Find label issues" }).click();
    const list = page.getByRole("list", { name: "Label issues" });
    await list.getByRole("listitem").first().waitFor();
    const flagged = await list
      .locator("li[data-issue]")
      .evaluateAll((rows) => rows.map((r) => r.getAttribute("data-issue")));
    assert.ok(flagged.length >= 2, `two rows or more flagged: ${flagged}`);
    assert.ok(
      flagged.every((id) => FLIPPED.includes(id!)),
      `only flipped rows are flagged: ${flagged}`,
    );
    await checkPage(w, "work-issues", "desktop");
    const before = (await readJson<{ feedback: unknown[] }>(await api("v1/heads/sentiment/feedback")))
      .feedback;
    const first = list.locator("li[data-issue]").first();
    const id = await first.getAttribute("data-issue");
    const suggested = (await first.locator(".suggested").textContent()) ?? "";
    await first.getByRole("button", { name: /^Accept / }).focus();
    await page.keyboard.press("Enter");
    await first.getByText(`Accepted: ${suggested}`).waitFor();
    // Focus moved on to the next row's first button: Tab to its Keep, Space keeps the label.
    await page.keyboard.press("Tab");
    await page.keyboard.press("Space");
    await list
      .locator("li[data-issue]")
      .nth(1)
      .getByText(/^Kept: /)
      .waitFor();
    const after = (
      await readJson<{ feedback: Array<{ text: string; label: string }> }>(
        await api("v1/heads/sentiment/feedback"),
      )
    ).feedback;
    assert.equal(after.length, before.length + 1, "one feedback: the accepted label, not the kept one");
    const row = reviews().find((r) => r.id === id)!;
    assert.deepEqual(
      { text: after.at(-1)?.text, label: after.at(-1)?.label },
      { text: row.text, label: suggested },
    );
    await page.getByText("1 accepted, sent to sentiment as feedback.").waitFor();
    await clean(w);
  });

  test("a batch job from a dataset: progress to succeeded, then the download holds every row", async () => {
    const w = await openPage(srv.browser, srv.origin, "desktop");
    const { page } = w;
    await page.goto(`${srv.origin}/#/work/batch`);
    await heading(page, "Batch predictions");
    await page.getByRole("button", { name: "Score reviews with sentiment" }).click();
    await page.waitForURL(/#\/work\/batch\/sentiment\/bp-/);
    job = decodeURIComponent(new URL(page.url()).hash.split("/").at(-1) ?? "");
    await page.getByText("succeeded", { exact: true }).waitFor({ timeout: 60_000 });
    assert.equal(
      await page.getByRole("progressbar", { name: "Rows scored" }).getAttribute("value"),
      String(ROWS),
    );
    const button = page.getByRole("button", { name: "Download part-00000.jsonl" });
    await button.waitFor();
    await checkPage(w, "work-batch", "desktop");
    const [download] = await Promise.all([page.waitForEvent("download"), button.click()]);
    assert.equal(download.suggestedFilename(), "part-00000.jsonl");
    const lines = (await readFile((await download.path())!, "utf8")).trim().split("\n");
    assert.equal(lines.length, ROWS, "one line a row");
    const ids = lines.map((l) => (JSON.parse(l) as { id: string; label: string }).id).sort();
    assert.deepEqual(
      ids,
      reviews()
        .map((r) => r.id)
        .sort(),
    );
    await clean(w);
  });

  test("drift of a head against its captured inputs: p-value against alpha and the label shift, drawn", async () => {
    const w = await openPage(srv.browser, srv.origin, "desktop");
    const { page } = w;
    await page.goto(`${srv.origin}/#/work/drift`);
    await heading(page, "Drift");
    await page.getByText(/^Last checked .* drift/).waitFor();
    await page.getByRole("button", { name: "Check drift" }).click();
    await page
      .getByRole("img", { name: /^P-value of each drift test against alpha\. This check: p .*; Scheduled/ })
      .waitFor();
    await page
      .getByRole("img", { name: /^Share of each predicted label, reference and current\. neg: / })
      .waitFor();
    await checkPage(w, "work-drift", "desktop");
    await clean(w);
  });

  test("every work page at 390×844", async () => {
    const size: Size = "mobile";
    const w = await openPage(srv.browser, srv.origin, size);
    const { page } = w;
    await suggest(page, 3);
    await checkPage(w, "work-label", size);
    await page.goto(`${srv.origin}/#/work/issues`);
    await page.getByRole("button", { name: "Find label issues" }).click();
    await page.getByRole("list", { name: "Label issues" }).getByRole("listitem").first().waitFor();
    await checkPage(w, "work-issues", size);
    await page.goto(`${srv.origin}/#/work/batch/sentiment/${job}`);
    await page.getByRole("button", { name: "Download part-00000.jsonl" }).waitFor();
    await checkPage(w, "work-batch", size);
    await page.goto(`${srv.origin}/#/work/drift`);
    await page.getByRole("button", { name: "Check drift" }).click();
    await page.getByRole("img", { name: /^P-value of each drift test/ }).waitFor();
    await checkPage(w, "work-drift", size);
    const width = await page.evaluate<number>("document.documentElement.scrollWidth");
    assert.ok(width <= SIZES.mobile.width, `no sideways scrolling: ${width}px`);
    await clean(w);
  });

  /** Settings' webhooks: add one (its signing secret shown once), then remove it after a confirmation. */
  const webhook = async (page: Page, admin: string) => {
    const url = "http://127.0.0.1:9/headstart";
    await page.getByLabel("URL").fill(url);
    await page.getByLabel("batch.succeeded").check();
    await page.getByRole("button", { name: "Add endpoint" }).click();
    const once = page.getByRole("region", { name: "Signing secret: shown once" });
    assert.match(await once.getByLabel("Secret").inputValue(), /^whsec_/);
    const listed = await readJson<{ webhooks: Array<{ url: string; events: string[] }> }>(
      await api("v1/webhooks", { key: admin }),
    );
    assert.deepEqual(
      listed.webhooks.map((h) => [h.url, h.events.sort()]),
      [[url, ["batch.succeeded", "head.trained"]]],
    );
    await once.getByRole("button", { name: "Done" }).click();
    await page.getByRole("button", { name: `Remove ${url}` }).click();
    await page
      .getByRole("dialog", { name: /^Remove webhook / })
      .getByRole("button", { name: "Remove" })
      .click();
    await page.getByText("No endpoint yet.").waitFor();
    const left = await readJson<{ webhooks: unknown[] }>(await api("v1/webhooks", { key: admin }));
    assert.deepEqual(left.webhooks, [], "removed");
  };

  test("settings: an admin creates a predict key (shown once) and revokes it; a train key sees no Settings", async () => {
    const made = async (id: string, scopes: string[], key?: string) => {
      const res = await api("v1/keys", { method: "POST", body: JSON.stringify({ id, scopes }), key });
      assert.equal(res.status, 201);
      return (await readJson<{ key: string }>(res)).key;
    };
    const admin = await made("root", ["admin"]);
    const trainer = await made("trainer", ["train"], admin);
    for (const size of Object.keys(SIZES) as Size[]) {
      const w = await openPage(srv.browser, srv.origin, size);
      const { page } = w;
      await page.goto(`${srv.origin}/`);
      await page.getByLabel("API key").fill(admin);
      await page.getByRole("button", { name: "Sign in" }).click();
      await page
        .getByRole("navigation", { name: "Sections" })
        .getByRole("link", { name: "Settings" })
        .click();
      await heading(page, "Settings");
      const id = `webshop-${size}`;
      await page.getByLabel("Name").fill(id);
      await page.getByRole("button", { name: "Create key" }).click();
      const once = page.getByRole("region", { name: `Key ${id}: shown once` });
      const secret = await once.getByLabel("Secret").inputValue();
      assert.match(secret, /^hs_/);
      const me = await readJson<{ keyId: string; scopes: string[] }>(await api("v1/me", { key: secret }));
      assert.deepEqual(me, { authRequired: true, keyId: id, scopes: ["predict"] });
      await checkPage(w, "settings", size);
      await once.getByRole("button", { name: "Done" }).click();
      assert.equal(await once.count(), 0, "the secret is gone once dismissed");
      assert.equal(await page.getByText(secret).count(), 0);
      await page.getByRole("button", { name: `Revoke ${id}` }).click();
      const dialog = page.getByRole("dialog", { name: `Revoke key ${id}?` });
      await dialog.getByRole("button", { name: "Revoke" }).click();
      await page.getByRole("row", { name: new RegExp(`^${id} predict .* revoked`) }).waitFor();
      assert.equal((await api("v1/me", { key: secret })).status, 401, "a revoked key is refused");
      if (size === "desktop") await webhook(page, admin);
      await clean(w, /status of 401/);
    }
    const w = await openPage(srv.browser, srv.origin, "desktop");
    const { page } = w;
    await page.goto(`${srv.origin}/`);
    await page.getByLabel("API key").fill(trainer);
    await page.getByRole("button", { name: "Sign in" }).click();
    await heading(page, "Datasets");
    const nav = page.getByRole("navigation", { name: "Sections" });
    assert.deepEqual(await nav.getByRole("link").allInnerTexts(), ["Datasets", "Heads", "Work"]);
    await page.goto(`${srv.origin}/#/settings`);
    await heading(page, "Datasets"); // a section the key cannot use is not shown
    const refused = await page.evaluate<number>(`fetch("v1/keys", {
      headers: { "x-api-key": sessionStorage.getItem("headstart.apiKey") },
    }).then((res) => res.status)`);
    assert.equal(refused, 403, "the API, not the page, refuses a train key the keys");
    assert.deepEqual(w.elsewhere, []);
    // The browser logs the sign-in probe's 401 and the provoked 403; nothing else may be logged.
    assert.deepEqual(
      w.problems.filter((p) => !/status of 40[13]/.test(p)),
      [],
    );
    await w.page.context().close();
  });
});
