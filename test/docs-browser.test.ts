/**
 * /docs in a real browser (Debian's Chromium, driven by playwright-core) with every request off
 * this origin refused: Swagger UI must render the whole API from the app's own files.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { type ServerType, serve } from "@hono/node-server";
import { type Browser, chromium } from "playwright-core";
import { createApp } from "../shared/api/app.ts";
import { makeLogger } from "../shared/log.ts";
import { tinyPlatform } from "./helpers/platform.ts";

/** Installed by scripts/system-deps.sh (npm test's pretest), as the notes on browser tests say. */
const CHROMIUM = "/usr/bin/chromium";

describe("Swagger UI in Chromium, offline", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
  let server: ServerType;
  let origin: string;
  let browser: Browser;
  let operationIds: string[];
  before(async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/system-deps.sh as root`);
    ctx = await tinyPlatform();
    const app = createApp(ctx.platform, makeLogger("test", "silent"));
    const doc = (await (await app.request("/openapi.json")).json()) as {
      paths: Record<string, Record<string, { operationId: string }>>;
    };
    operationIds = Object.values(doc.paths).flatMap((ops) => Object.values(ops).map((op) => op.operationId));
    server = await new Promise<ServerType>((resolve) => {
      const s = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, () => resolve(s));
    });
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
  });
  after(async () => {
    await browser?.close();
    await new Promise((resolve) => server?.close(resolve));
    await ctx?.cleanup();
  });

  test("renders every operation with no request off this origin and no console error", async () => {
    const page = await browser.newPage();
    const elsewhere: string[] = [];
    const problems: string[] = [];
    await page.route("**/*", (route) => {
      const url = route.request().url();
      if (new URL(url).origin === origin) return route.continue();
      elsewhere.push(url);
      return route.abort();
    });
    page.on("console", (msg) => {
      if (msg.type() === "error") problems.push(msg.text());
    });
    page.on("pageerror", (err) => problems.push(err.message));

    await page.goto(`${origin}/docs`);
    const predict = page.locator(".opblock", { hasText: "predictHead" });
    await predict.waitFor({ state: "visible" });
    assert.equal(await page.locator(".opblock").count(), operationIds.length);
    const shown = await page.locator(".opblock-summary-operation-id").allInnerTexts();
    assert.deepEqual(shown.sort(), [...operationIds].sort());
    assert.ok(
      await predict.getByText("Predict on raw inputs (texts, images, audio) or ready embeddings").isVisible(),
    );
    assert.ok(await page.getByRole("button", { name: /Authorize/ }).isVisible(), "the API-key schemes");

    // Opening an operation renders its documented responses, the shared error schema among them.
    await page.locator(".opblock", { hasText: "getJob" }).locator(".opblock-summary").click();
    await page.locator(".opblock.is-open .responses-table").waitFor({ state: "visible" });
    assert.ok(await page.locator(".opblock.is-open .response[data-code='404']").isVisible());

    assert.deepEqual(elsewhere, [], "no request left this origin");
    assert.deepEqual(problems, [], "no console error (CSP violations included)");
  });
});
