#!/usr/bin/env node
// The CLI runs its prebuilt bundle while it matches the sources (bin/cli-bundle.js), else the
// TypeScript sources through tsx (and a fresh bundle is built in the background for next time).
// HEADSTART_CLI_SOURCES=1 always runs the sources.
import { freshCliBundle, rebuildCliInBackground } from "./cli-bundle.js";

const fromSources = process.env.HEADSTART_CLI_SOURCES === "1";
const bundle = fromSources ? undefined : freshCliBundle();
if (bundle) {
  await import(bundle);
} else {
  if (!fromSources) rebuildCliInBackground();
  const { register } = await import("tsx/esm/api");
  register();
  await import("../functions/cli/main.ts");
}
