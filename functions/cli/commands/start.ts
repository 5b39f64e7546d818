import type { Command } from "commander";
import { LOCAL_CUSTOMER } from "../../../shared/auth/api-keys.ts";
import { KeyStore } from "../../../shared/auth/key-store.ts";
import { DEMO_DATASET, DEMO_HEAD, runDemo } from "../../../shared/demo.ts";
import type { Platform } from "../../../shared/platform.ts";
import { context } from "../context.ts";
import { demoSummary } from "./demo.ts";
import { addServerOptions, toServeOptions } from "./serve.ts";

export function registerStart(program: Command): void {
  addServerOptions(
    program
      .command("start")
      .description(
        "the local platform: API + worker on the embedded store, seeded with the IMDB sample on first run",
      ),
  ).action(async (opts, cmd: Command) => {
    const { platform, log, progress } = context(cmd, "process");
    const { serveApi } = await import("../serve.ts");
    const url = await serveApi(platform, log, toServeOptions(opts));
    log.info("listening", { url, store: platform.store.url });
    let r: Awaited<ReturnType<typeof runDemo>>;
    try {
      r = await runDemo(platform, { log });
    } finally {
      progress.stop();
    }
    process.stdout.write(
      `\n${demoSummary(r)}\n\nheadstart is running at ${url} (dataset ${DEMO_DATASET}, head ${DEMO_HEAD}); web console at ${url}/, API docs at ${url}/docs\ntry:\n  ${await tryIt(platform, url)}\n\nCtrl-C to stop.\n`,
    );
  });
}

/** A request to paste into a shell, and what it needs. */
async function tryIt(platform: Platform, url: string): Promise<string> {
  // Once the store has keys the server demands one: show where it goes instead of a 401.
  const customer = platform.config.customer ?? LOCAL_CUSTOMER;
  const keyed = (await new KeyStore(platform.store, customer).list()).some((k) => !k.revoked);
  const keyHeader = keyed ? ` -H "x-api-key: $HEADSTART_API_KEY"` : "";
  const curl = `curl -s -X POST ${url}/v1/heads/${DEMO_HEAD}/predict -H 'content-type: application/json'${keyHeader} -d '{"inputs": ["An absolute masterpiece, I loved it.", "Dull, predictable and far too long."]}'`;
  const keyNote = keyed
    ? "\n(this store has API keys: set HEADSTART_API_KEY to one with the predict scope)"
    : "";
  return `${curl}${keyNote}`;
}
