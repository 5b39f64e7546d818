/**
 * Try-it on an audio head in the console, in Chromium on the real HTTP stack
 * (test/helpers/console.ts), a filesystem store and the real speech backbone: spoken "yes" and
 * "no" (espeak-ng) → a head. Pick a clip (WAV, or FLAC) → an `<audio controls>` preview from a
 * blob: URL that the CSP's `media-src` lets load → Predict by keyboard → the label and scores →
 * "this is wrong" by keyboard → the correction stored with the clip's bytes under
 * `feedback-audio/`. Removing the clip removes the player and focuses the file input; a dropped
 * clip the browser gives no type is known by its extension; a file that is neither an image nor
 * audio is refused in the page. At 1280×800 and 390×844: no off-origin
 * request, no console error (CSP violations included), axe-core 0 serious/critical.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Page } from "playwright-core";
import { loadConfig } from "../shared/config.ts";
import { Platform } from "../shared/platform.ts";
import { FsStore } from "../shared/store/fs.ts";
import {
  type ConsoleServer,
  checkPage,
  heading,
  openPage,
  type Size,
  startConsole,
  type Watched,
} from "./helpers/console.ts";
import { tempDir } from "./helpers/platform.ts";
import { speak } from "./helpers/speak.ts";

const VOICES = ["en+m1", "en+m3", "en+f1", "en+f3"];
const SPEEDS = [130, 175];
const AUDIO_BACKBONE = loadConfig({}).defaultAudioBackbone;
type Stored = {
  id: string;
  audio?: string;
  image?: string;
  text?: string;
  label: string;
  predictionId?: string;
};

/**
 * Waits until `expr` is true in the page, evaluated through the DevTools protocol (as
 * `page.evaluate` does; `waitForFunction`'s polling evaluates strings in the page, which its CSP
 * refuses).
 */
async function until(page: Page, expr: string, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await page.evaluate<boolean>(expr)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail(`never: ${what}`);
}

describe("the console tries an audio head in Chromium", () => {
  let dir: string;
  let platform: Platform;
  let srv: ConsoleServer;
  /** Training clips: "yes" as WAV, "no" as FLAC (files the page picks). */
  const clip: Record<"yes" | "no", Buffer> = { yes: Buffer.alloc(0), no: Buffer.alloc(0) };

  before(
    async () => {
      dir = await tempDir("headstart-console-audio-");
      const store = new FsStore(join(dir, "store"));
      platform = new Platform(store, loadConfig({}, { store: store.root }));
      const data = join(dir, "words");
      await mkdir(join(data, "files"), { recursive: true });
      const rows: object[] = [];
      for (const word of ["yes", "no"] as const) {
        let i = 0;
        for (const voice of VOICES) {
          for (const speed of SPEEDS) {
            const file = `${word}-${i}.${i % 2 ? "flac" : "wav"}`;
            await speak(word, voice, speed, join(data, "files", file));
            rows.push({ id: `${word}-${i}`, audio: file, label: word });
            i++;
          }
        }
      }
      clip.yes = await readFile(join(data, "files", "yes-0.wav"));
      clip.no = await readFile(join(data, "files", "no-1.flac"));
      await writeFile(join(data, "manifest.jsonl"), rows.map((r) => `${JSON.stringify(r)}\n`).join(""));
      await platform.upload("words", data);
      await platform.embed("words", { backbone: AUDIO_BACKBONE });
      await platform.train({
        dataset: "words",
        head: "words",
        backbone: AUDIO_BACKBONE,
        type: "knn",
        params: { k: 1 },
      });
      srv = await startConsole(platform);
    },
    { timeout: 180_000 },
  );
  after(async () => {
    await srv?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const feedback = async () =>
    ((await (await fetch(`${srv.origin}/v1/heads/words/feedback`)).json()) as { feedback: Stored[] })
      .feedback;
  const clean = async (w: Watched) => {
    assert.deepEqual(w.elsewhere, [], "no request left this origin");
    assert.deepEqual(w.problems, [], "no console error (CSP violations included)");
    await w.page.context().close();
  };
  const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

  test("the page's CSP lets media load from blob: URLs only (and this origin)", async () => {
    const csp = (await fetch(`${srv.origin}/`)).headers.get("content-security-policy") ?? "";
    const media = csp
      .split(";")
      .map((d) => d.trim())
      .find((d) => d.startsWith("media-src"));
    assert.equal(media, "media-src 'self' blob:");
    assert.match(csp, /default-src 'self'/);
  });

  const cases: Array<[Size, "yes" | "no", string]> = [
    ["desktop", "yes", "audio/wav"],
    ["mobile", "no", "audio/flac"],
  ];
  for (const [size, word, mimeType] of cases) {
    test(`${size}: pick a ${mimeType} clip → preview → predict → this is wrong → stored with the clip`, async () => {
      const w = await openPage(srv.browser, srv.origin, size);
      const { page } = w;
      const name = `${word}.${mimeType.split("/")[1]}`;
      await page.goto(`${srv.origin}/#/try/words`);
      await heading(page, "Try it");
      const picker = page.getByLabel(/^Or an image or audio clip/);
      await picker.setInputFiles({ name, mimeType, buffer: clip[word] });
      const player = page.getByLabel(`The chosen file, ${name}`);
      await player.waitFor();
      assert.match((await player.getAttribute("src")) ?? "", /^blob:/);
      // The CSP lets the player load it: its length is known (a blocked source never gets one).
      await until(page, '(document.querySelector("audio")?.duration ?? 0) > 0.1', "the clip's length");
      await page.getByRole("button", { name: "Predict" }).focus();
      await page.keyboard.press("Enter");
      await page.getByRole("heading", { name: `Label: ${word}` }).waitFor();
      await page.getByRole("img", { name: /^Scores/ }).waitFor();
      // The nearest training clips play too: fetched through the API (`files?path=`), from blob: URLs.
      const table = page.getByRole("region", { name: "Nearest training items table" });
      const own = word === "yes" ? "yes-0: yes-0.wav" : "no-1: no-1.flac"; // the clip's own row
      const nearest = table.getByLabel(`Training item ${own}`);
      await nearest.waitFor();
      assert.match((await nearest.getAttribute("src")) ?? "", /^blob:/);
      await until(
        page,
        `[...document.querySelectorAll("td.item audio")].every((a) => a.duration > 0.1)`,
        "the training clips' lengths",
      );
      await checkPage(w, "try-it-audio", size);
      const before = (await feedback()).length;
      await page.getByRole("button", { name: "This is wrong" }).focus();
      await page.keyboard.press("Enter");
      const other = word === "yes" ? "no" : "yes";
      const select = page.getByLabel("Correct label");
      await select.waitFor();
      // Focus moves to the form's first control (its effect runs after the render).
      await until(page, 'document.activeElement?.id === "fb-label"', "focus on the correct label");
      assert.equal(await select.inputValue(), other);
      await page.keyboard.press("Tab");
      await page.keyboard.press("Enter");
      await page.getByText(/^Thanks: feedback fb-/).waitFor();
      await checkPage(w, "try-it-audio-feedback", size);
      const added = (await feedback()).slice(before);
      assert.equal(added.length, 1);
      assert.equal(added[0].label, other);
      assert.match(added[0].predictionId ?? "", /^p-[0-9a-f]{24}$/);
      assert.equal(added[0].audio, `${sha(clip[word])}.${word === "yes" ? "wav" : "flac"}`);
      const obj = await platform.store.get(`heads/words/feedback-audio/${added[0].audio}`);
      assert.equal(sha(obj!.body), sha(clip[word]), "the clip's own bytes");
      await clean(w);
    });
  }

  test("remove the clip: the player goes, focus returns to the picker; a dropped clip with no type (by its extension) answers; a text file is refused", async () => {
    const w = await openPage(srv.browser, srv.origin, "desktop");
    const { page } = w;
    await page.goto(`${srv.origin}/#/try/words`);
    await heading(page, "Try it");
    const picker = page.getByLabel(/^Or an image or audio clip/);
    await picker.setInputFiles({ name: "yes.wav", mimeType: "audio/wav", buffer: clip.yes });
    await page.getByLabel("The chosen file, yes.wav").waitFor();
    assert.equal(await page.getByLabel("Text").isDisabled(), true, "a clip or a text, not both");
    await page.getByRole("button", { name: "Remove clip" }).click();
    await page.getByLabel("The chosen file, yes.wav").waitFor({ state: "detached" });
    assert.equal(await page.evaluate<string>("document.activeElement.id"), "try-image");
    assert.equal(await page.locator("audio").count(), 0);
    // A drop as the browser makes one: a DataTransfer holding the clip, on the drop zone.
    await page.evaluate(`(() => {
      const bytes = Uint8Array.from(atob("${clip.no.toString("base64")}"), (c) => c.charCodeAt(0));
      const data = new DataTransfer();
      data.items.add(new File([bytes], "dropped.flac", { type: "" }));
      document.querySelector(".drop").dispatchEvent(new DragEvent("drop", { dataTransfer: data, bubbles: true }));
    })()`);
    await page.getByLabel("The chosen file, dropped.flac").waitFor();
    await until(page, '(document.querySelector("audio")?.duration ?? 0) > 0.1', "the dropped clip's length");
    await page.getByRole("button", { name: "Predict" }).click();
    await page.getByRole("heading", { name: "Label: no" }).waitFor();
    await page.getByRole("button", { name: "Remove clip" }).click();
    await picker.setInputFiles({ name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("hello") });
    await page
      .getByRole("alert")
      .filter({ hasText: "notes.txt is neither an image nor an audio clip" })
      .waitFor();
    await clean(w);
  });
});
